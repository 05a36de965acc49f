package nodeapi

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
)

func TestDecodeContainerSpecRejects(t *testing.T) {
	tests := []struct {
		name, body, field string
	}{
		{"empty body", ``, ""},
		{"not an object", `[1]`, "(body)"},
		{"truncated", `{"image":"a"`, ""},
		{"trailing data", `{"image":"a"} {}`, ""},
		{"unknown top field", `{"image":"a","imgae":"b"}`, "imgae"},
		{"unknown nested field", `{"image":"a","ports":[{"port":80,"bogus":1}]}`, "ports[0].bogus"},
		{"missing image", `{"name":"web"}`, "image"},
		{"image with space", `{"image":"a b"}`, "image"},
		{"bad name", `{"image":"a","name":"Web!"}`, "name"},
		{"memory as string", `{"image":"a","resources":{"memory":"12XB"}}`, "resources.memory"},
		{"memory too small", `{"image":"a","resources":{"memory":1024}}`, "resources.memory"},
		{"negative memory", `{"image":"a","resources":{"memory":-7340032}}`, "resources.memory"},
		{"cpu too small", `{"image":"a","resources":{"milliCPU":1}}`, "resources.milliCPU"},
		{"pids too small", `{"image":"a","resources":{"pids":1}}`, "resources.pids"},
		{"port zero", `{"image":"a","ports":[{"port":0}]}`, "ports[0].port"},
		{"port too big", `{"image":"a","ports":[{"port":70000}]}`, "ports[0].port"},
		{"bad protocol", `{"image":"a","ports":[{"port":80,"protocol":"sctp"}]}`, "ports[0].protocol"},
		{"duplicate port name", `{"image":"a","ports":[{"name":"http","port":80},{"name":"http","port":81}]}`, "ports[1].name"},
		{"duplicate port", `{"image":"a","ports":[{"port":80},{"port":80,"protocol":"tcp"}]}`, "ports[1].port"},
		{"env without =", `{"image":"a","env":["A=1","B"]}`, "env[1]"},
		{"env empty key", `{"image":"a","env":["=x"]}`, "env[0]"},
		{"relative workdir", `{"image":"a","workdir":"app"}`, "workdir"},
		{"unclean workdir", `{"image":"a","workdir":"/app/../etc"}`, "workdir"},
		{"bad user", `{"image":"a","user":"root;rm"}`, "user"},
		{"bad hostname", `{"image":"a","hostname":"-x"}`, "hostname"},
		{"empty entrypoint", `{"image":"a","entrypoint":[""]}`, "entrypoint[0]"},
		{"nul in cmd", `{"image":"a","cmd":["x","a\u0000b"]}`, "cmd[1]"},
		{"mount target root", `{"image":"a","mounts":[{"source":"/d","target":"/"}]}`, "mounts[0].target"},
		{"mount relative source", `{"image":"a","mounts":[{"source":"d","target":"/d"}]}`, "mounts[0].source"},
		{"mount dup target", `{"image":"a","mounts":[{"type":"tmpfs","target":"/d"},{"type":"tmpfs","target":"/d"}]}`, "mounts[1].target"},
		{"mount bad type", `{"image":"a","mounts":[{"type":"nfs","target":"/d"}]}`, "mounts[0].type"},
		{"tmpfs with source", `{"image":"a","mounts":[{"type":"tmpfs","source":"/x","target":"/d"}]}`, "mounts[0].source"},
		{"bad restart", `{"image":"a","restart":{"policy":"sometimes"}}`, "restart.policy"},
		{"retries without on-failure", `{"image":"a","restart":{"policy":"always","maxRetries":3}}`, "restart.maxRetries"},
		{"bad seccomp", `{"image":"a","security":{"seccomp":"off"}}`, "security.seccomp"},
		{"bad network", `{"image":"a","security":{"network":"bridge"}}`, "security.network"},
		{"bad capability", `{"image":"a","security":{"capAdd":["CAP FLY"]}}`, "security.capAdd[0]"},
		{"bad stop timeout", `{"image":"a","stopTimeout":"soon"}`, "stopTimeout"},
		{"stop timeout as number", `{"image":"a","stopTimeout":10}`, "stopTimeout"},
		{"stop timeout too long", `{"image":"a","stopTimeout":"2h"}`, "stopTimeout"},
		{"readOnly as string", `{"image":"a","security":{"readOnlyRootfs":"yes"}}`, "security.readOnlyRootfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeContainerSpec(strings.NewReader(tt.body))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			var fe *errs.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			if fe.Field != tt.field {
				t.Fatalf("field = %q, want %q (error: %v)", fe.Field, tt.field, err)
			}
		})
	}
}

func TestDecodeContainerSpecAccepts(t *testing.T) {
	body := `{"name":"web.1","image":"demo:1","cmd":["serve"],"env":["A=1","EMPTY="],
	"user":"nobody:nogroup","ports":[{"name":"http","port":8080},{"port":8080,"protocol":"udp"}],
	"mounts":[{"type":"tmpfs","target":"/cache","size":1048576},{"source":"/srv/data","target":"/data","readOnly":true}],
	"resources":{"memory":67108864,"milliCPU":500,"pids":64},
	"restart":{"policy":"on-failure","maxRetries":3},
	"security":{"readOnlyRootfs":false,"capAdd":["net_bind_service"],"seccomp":"default"},
	"stopTimeout":"3s"}`
	s, err := DecodeContainerSpec(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	f := false
	want := ContainerSpec{
		Name: "web.1", Image: "demo:1", Cmd: []string{"serve"}, Env: []string{"A=1", "EMPTY="},
		User:        "nobody:nogroup",
		Ports:       []Port{{Name: "http", Port: 8080}, {Port: 8080, Protocol: "udp"}},
		Mounts:      []Mount{{Type: "tmpfs", Target: "/cache", Size: 1 << 20}, {Source: "/srv/data", Target: "/data", ReadOnly: true}},
		Resources:   Resources{MemoryBytes: 64 << 20, MilliCPU: 500, Pids: 64},
		Restart:     RestartPolicy{Policy: "on-failure", MaxRetries: 3},
		Security:    Security{ReadOnlyRootfs: &f, CapAdd: []string{"net_bind_service"}, Seccomp: "default"},
		StopTimeout: Duration(3 * time.Second),
	}
	if d := cmp.Diff(want, s); d != "" {
		t.Fatalf("decoded spec differs (-want +got):\n%s", d)
	}
}

func TestDecodeBodyLimit(t *testing.T) {
	body := `{"image":"a","env":["A=` + strings.Repeat("x", MaxRequestBytes) + `"]}`
	_, err := DecodeContainerSpec(strings.NewReader(body))
	if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "over") {
		t.Fatalf("oversized body: got %v", err)
	}
}

// FuzzDecodeContainerSpec: any body either decodes to a spec that validates,
// or fails with an ErrInvalid; it never panics.
func FuzzDecodeContainerSpec(f *testing.F) {
	f.Add(`{"image":"a"}`)
	f.Add(`{"image":"a","ports":[{"port":80,"bogus":1}]}`)
	f.Add(`{"image":"a","resources":{"memory":"12XB"},"stopTimeout":"1s"}`)
	f.Add(`{"image":"a","labels":{"x":"y"},"mounts":[{"type":"tmpfs","target":"/t"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		s, err := DecodeContainerSpec(strings.NewReader(body))
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error is not ErrInvalid: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("decoded spec does not validate: %v", err)
		}
	})
}
