package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image/build"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func TestRunFlagsToSpec(t *testing.T) {
	no := false
	tests := []struct {
		name string
		set  func(*runFlags)
		// want changes the spec of `moat runtime run demo:1`; nil when an
		// error is expected.
		want        func(*nodeapi.ContainerSpec)
		wantErr     string // a substring
		wantInvalid bool   // the error is nodeapi validation's
	}{
		{name: "defaults", set: func(*runFlags) {}, want: func(*nodeapi.ContainerSpec) {}},
		{
			name: "args and entrypoint",
			set: func(f *runFlags) {
				f.entrypoint = "/bin/sh"
				f.spec.Cmd = []string{"-c", "echo hi"}
			},
			want: func(s *nodeapi.ContainerSpec) {
				s.Entrypoint = []string{"/bin/sh"}
				s.Cmd = []string{"-c", "echo hi"}
			},
		},
		{name: "memory", set: func(f *runFlags) { f.memory = "64Mi" }, want: func(s *nodeapi.ContainerSpec) { s.Resources.MemoryBytes = 64 << 20 }},
		{name: "bad memory", set: func(f *runFlags) { f.memory = "lots" }, wantErr: "--memory"},
		{name: "memory below minimum", set: func(f *runFlags) { f.memory = "1Mi" }, wantErr: "resources.memory", wantInvalid: true},
		{name: "cpus as cores", set: func(f *runFlags) { f.cpus = "0.5" }, want: func(s *nodeapi.ContainerSpec) { s.Resources.MilliCPU = 500 }},
		{name: "cpus as millicores", set: func(f *runFlags) { f.cpus = "500m" }, want: func(s *nodeapi.ContainerSpec) { s.Resources.MilliCPU = 500 }},
		{name: "bad cpus", set: func(f *runFlags) { f.cpus = "half" }, wantErr: "--cpus"},
		{
			name: "restart on-failure with max",
			set:  func(f *runFlags) { f.restart = "on-failure:3" },
			want: func(s *nodeapi.ContainerSpec) { s.Restart = nodeapi.RestartPolicy{Policy: "on-failure", MaxRetries: 3} },
		},
		{name: "restart always", set: func(f *runFlags) { f.restart = "always" }, want: func(s *nodeapi.ContainerSpec) { s.Restart.Policy = "always" }},
		{name: "restart always with max", set: func(f *runFlags) { f.restart = "always:3" }, wantErr: "--restart"},
		{name: "unknown restart policy", set: func(f *runFlags) { f.restart = "sometimes" }, wantErr: "restart.policy", wantInvalid: true},
		{
			name: "ports",
			set:  func(f *runFlags) { f.ports = []string{"http=8080", "53/udp", "9090"} },
			want: func(s *nodeapi.ContainerSpec) {
				s.Ports = []nodeapi.Port{{Name: "http", Port: 8080}, {Port: 53, Protocol: "udp"}, {Port: 9090}}
			},
		},
		{name: "port not a number", set: func(f *runFlags) { f.ports = []string{"x"} }, wantErr: `--port "x"`},
		{name: "port zero", set: func(f *runFlags) { f.ports = []string{"0"} }, wantErr: "ports[0].port", wantInvalid: true},
		{name: "port protocol", set: func(f *runFlags) { f.ports = []string{"80/sctp"} }, wantErr: "ports[0].protocol", wantInvalid: true},
		{
			name: "mounts",
			set:  func(f *runFlags) { f.mounts = []string{"/a:/b:ro", "/c:/d", "/e:/f:rw"} },
			want: func(s *nodeapi.ContainerSpec) {
				s.Mounts = []nodeapi.Mount{
					{Source: "/a", Target: "/b", ReadOnly: true},
					{Source: "/c", Target: "/d"},
					{Source: "/e", Target: "/f"},
				}
			},
		},
		{name: "mount bad mode", set: func(f *runFlags) { f.mounts = []string{"/a:/b:rx"} }, wantErr: `--mount "/a:/b:rx"`},
		{name: "mount without target", set: func(f *runFlags) { f.mounts = []string{"/a"} }, wantErr: "--mount"},
		{name: "mount relative source", set: func(f *runFlags) { f.mounts = []string{"a:/b"} }, wantErr: "mounts[0].source", wantInvalid: true},
		{
			name: "tmpfs",
			set:  func(f *runFlags) { f.tmpfs = []string{"/cache:1Mi", "/scratch"} },
			want: func(s *nodeapi.ContainerSpec) {
				s.Mounts = []nodeapi.Mount{{Type: "tmpfs", Target: "/cache", Size: 1 << 20}, {Type: "tmpfs", Target: "/scratch"}}
			},
		},
		{name: "tmpfs bad size", set: func(f *runFlags) { f.tmpfs = []string{"/cache:big"} }, wantErr: "--tmpfs"},
		{
			name: "mounts before tmpfs",
			set: func(f *runFlags) {
				f.tmpfs = []string{"/cache"}
				f.mounts = []string{"/a:/b"}
			},
			want: func(s *nodeapi.ContainerSpec) {
				s.Mounts = []nodeapi.Mount{{Source: "/a", Target: "/b"}, {Type: "tmpfs", Target: "/cache"}}
			},
		},
		{
			name: "labels",
			set:  func(f *runFlags) { f.labels = []string{"k=v", "empty=", "eq=a=b", "k=w"} },
			want: func(s *nodeapi.ContainerSpec) { s.Labels = map[string]string{"k": "w", "empty": "", "eq": "a=b"} },
		},
		{name: "label without =", set: func(f *runFlags) { f.labels = []string{"k"} }, wantErr: `--label "k"`},
		{name: "label empty key", set: func(f *runFlags) { f.labels = []string{"=v"} }, wantErr: "labels", wantInvalid: true},
		{name: "read-write", set: func(f *runFlags) { f.readWrite = true }, want: func(s *nodeapi.ContainerSpec) { s.Security.ReadOnlyRootfs = &no }},
		{name: "allow new privileges", set: func(f *runFlags) { f.allowNewPrivs = true }, want: func(s *nodeapi.ContainerSpec) { s.Security.NoNewPrivileges = &no }},
		{name: "stop timeout", set: func(f *runFlags) { f.stopTimeout = "3s" }, want: func(s *nodeapi.ContainerSpec) { s.StopTimeout = nodeapi.Duration(3 * time.Second) }},
		{name: "bad stop timeout", set: func(f *runFlags) { f.stopTimeout = "soon" }, wantErr: `--stop-timeout "soon"`},
		{name: "stop timeout too long", set: func(f *runFlags) { f.stopTimeout = "2h" }, wantErr: "stopTimeout", wantInvalid: true},
		{name: "bad capability", set: func(f *runFlags) { f.spec.Security.CapAdd = []string{"fly"} }, wantErr: "security.capAdd[0]", wantInvalid: true},
		{name: "no image", set: func(f *runFlags) { f.spec.Image = "" }, wantErr: "image", wantInvalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// What cobra leaves in runFlags for `moat runtime run demo:1`.
			f := runFlags{spec: nodeapi.ContainerSpec{Image: "demo:1"}, restart: "no"}
			tt.set(&f)
			got, err := f.toSpec()
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("toSpec() = %+v, want an error", got)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not mention %q", err, tt.wantErr)
				}
				if errors.Is(err, errs.ErrInvalid) != tt.wantInvalid {
					t.Errorf("error %q: errors.Is(ErrInvalid) = %v, want %v", err, !tt.wantInvalid, tt.wantInvalid)
				}
				return
			}
			if err != nil {
				t.Fatalf("toSpec: %v", err)
			}
			want := nodeapi.ContainerSpec{Image: "demo:1", Restart: nodeapi.RestartPolicy{Policy: "no"}}
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("toSpec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRestart(t *testing.T) {
	tests := []struct {
		in      string
		want    nodeapi.RestartPolicy
		wantErr bool
	}{
		{in: "", want: nodeapi.RestartPolicy{}},
		{in: "no", want: nodeapi.RestartPolicy{Policy: "no"}},
		{in: "always", want: nodeapi.RestartPolicy{Policy: "always"}},
		{in: "on-failure", want: nodeapi.RestartPolicy{Policy: "on-failure"}},
		{in: "on-failure:0", want: nodeapi.RestartPolicy{Policy: "on-failure"}},
		{in: "on-failure:3", want: nodeapi.RestartPolicy{Policy: "on-failure", MaxRetries: 3}},
		{in: "on-failure:-1", wantErr: true},
		{in: "on-failure:x", wantErr: true},
		{in: "on-failure:", wantErr: true},
		{in: "always:3", wantErr: true},
		{in: "no:1", wantErr: true},
		{in: ":3", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseRestart(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseRestart(%q) = %+v, want an error", tt.in, got)
			} else if !strings.Contains(err.Error(), "--restart") {
				t.Errorf("parseRestart(%q): error %q does not name --restart", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRestart(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parseRestart(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in      string
		want    nodeapi.Port
		wantErr bool
	}{
		{in: "8080", want: nodeapi.Port{Port: 8080}},
		{in: "http=8080", want: nodeapi.Port{Name: "http", Port: 8080}},
		{in: "53/udp", want: nodeapi.Port{Port: 53, Protocol: "udp"}},
		{in: "dns=53/udp", want: nodeapi.Port{Name: "dns", Port: 53, Protocol: "udp"}},
		{in: "80/tcp", want: nodeapi.Port{Port: 80, Protocol: "tcp"}},
		// Range and protocol checks are nodeapi validation's.
		{in: "0", want: nodeapi.Port{Port: 0}},
		{in: "x", wantErr: true},
		{in: "", wantErr: true},
		{in: "http=", wantErr: true},
		{in: "http=x/udp", wantErr: true},
		{in: "/udp", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parsePort(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parsePort(%q) = %+v, want an error", tt.in, got)
			} else if !strings.Contains(err.Error(), "--port") {
				t.Errorf("parsePort(%q): error %q does not name --port", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parsePort(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parsePort(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseChown(t *testing.T) {
	tests := []struct {
		in               string
		wantUID, wantGID int
		wantErr          bool
	}{
		{in: "", wantUID: 7, wantGID: 8}, // unchanged
		{in: "0:0"},
		{in: "1000:1001", wantUID: 1000, wantGID: 1001},
		{in: "65534:65534", wantUID: 65534, wantGID: 65534},
		{in: "1000", wantErr: true},
		{in: "1000:", wantErr: true},
		{in: ":1000", wantErr: true},
		{in: "app:app", wantErr: true},
		{in: "-1:0", wantErr: true},
		{in: "0:-1", wantErr: true},
		{in: "1:2:3", wantErr: true},
	}
	for _, tt := range tests {
		opts := build.Options{UID: 7, GID: 8}
		err := parseChown(tt.in, &opts)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseChown(%q) = %d:%d, want an error", tt.in, opts.UID, opts.GID)
			} else if !strings.Contains(err.Error(), "--chown") {
				t.Errorf("parseChown(%q): error %q does not name --chown", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseChown(%q): %v", tt.in, err)
			continue
		}
		if opts.UID != tt.wantUID || opts.GID != tt.wantGID {
			t.Errorf("parseChown(%q) = %d:%d, want %d:%d", tt.in, opts.UID, opts.GID, tt.wantUID, tt.wantGID)
		}
	}
}

func TestParseLabels(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    map[string]string
		wantErr string
	}{
		{name: "none", in: nil, want: nil},
		{name: "some", in: []string{"a=1", "b=", "c=x=y"}, want: map[string]string{"a": "1", "b": "", "c": "x=y"}},
		{name: "last wins", in: []string{"a=1", "a=2"}, want: map[string]string{"a": "2"}},
		{name: "no =", in: []string{"a=1", "b"}, wantErr: `--label "b"`},
		{name: "empty key", in: []string{"=v"}, wantErr: `--label "=v"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts build.Options
			err := parseLabels(tt.in, &opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseLabels(%q) error = %v, want one mentioning %s", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseLabels(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, opts.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSourceDateEpoch(t *testing.T) {
	tests := []struct {
		env     string
		want    time.Time
		wantErr bool
	}{
		{env: ""}, // unset: Created stays zero
		{env: "0", want: time.Unix(0, 0).UTC()},
		{env: "1700000000", want: time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)},
		{env: "-1", wantErr: true},
		{env: "1.5", wantErr: true},
		{env: "yesterday", wantErr: true},
		{env: " 1700000000", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tt.env)
			var opts build.Options
			err := sourceDateEpoch(&opts)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
					t.Fatalf("sourceDateEpoch() error = %v, want one naming SOURCE_DATE_EPOCH", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("sourceDateEpoch: %v", err)
			}
			if !opts.Created.Equal(tt.want) || opts.Created.Location() != time.UTC {
				t.Errorf("Created = %v, want %v in UTC", opts.Created, tt.want)
			}
		})
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "-"},
		{now, "0s"},
		{now.Add(-999 * time.Millisecond), "0s"},
		{now.Add(-59 * time.Second), "59s"},
		{now.Add(-time.Minute), "1m"},
		{now.Add(-(59*time.Minute + 59*time.Second)), "59m"},
		{now.Add(-time.Hour), "1h"},
		{now.Add(-47 * time.Hour), "47h"},
		{now.Add(-48 * time.Hour), "2d"},
		{now.Add(-30 * 24 * time.Hour), "30d"},
	}
	for _, tt := range tests {
		if got := ago(tt.t, now); got != tt.want {
			t.Errorf("ago(now - %v) = %q, want %q", now.Sub(tt.t), got, tt.want)
		}
	}
}

func TestShortDigest(t *testing.T) {
	hex := "4f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
	tests := []struct{ in, want string }{
		{"sha256:" + hex, "4f1c2a9b8d7e"},
		{hex, "4f1c2a9b8d7e"},
		{"sha256:abc", "abc"},
		{"4f1c2a9b8d7e", "4f1c2a9b8d7e"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := shortDigest(tt.in); got != tt.want {
			t.Errorf("shortDigest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExitString(t *testing.T) {
	code := func(n int) *int { return &n }
	tests := []struct {
		name string
		c    nodeapi.Container
		want string
	}{
		{"running", nodeapi.Container{State: "running"}, "-"},
		{"success", nodeapi.Container{ExitCode: code(0)}, "0"},
		{"failure", nodeapi.Container{ExitCode: code(3)}, "3"},
		{"signal", nodeapi.Container{ExitCode: code(143), Signal: "TERM"}, "143 (TERM)"},
		{"oom", nodeapi.Container{ExitCode: code(137), OOMKilled: true}, "137 (oom)"},
		{"oom beats signal", nodeapi.Container{ExitCode: code(137), Signal: "KILL", OOMKilled: true}, "137 (oom)"},
		{"start error", nodeapi.Container{ExitCode: code(-1), Error: "exec: no such file"}, "error"},
		{"error beats oom", nodeapi.Container{ExitCode: code(-1), Error: "x", OOMKilled: true}, "error"},
		{"error without exit", nodeapi.Container{Error: "x"}, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitString(tt.c); got != tt.want {
				t.Errorf("exitString = %q, want %q", got, tt.want)
			}
		})
	}
}
