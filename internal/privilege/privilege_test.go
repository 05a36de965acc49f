package privilege

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"root", []string{"root"}, ""},
		{"cap:NET_BIND_SERVICE, writable-root", []string{"cap:NET_BIND_SERVICE", "writable-root"}, ""},
		{"CAP:cap_chown cap:chown\tHOST-NETWORK", []string{"cap:CHOWN", "host-network"}, ""},
		{"seccomp-unconfined,new-privileges,,", []string{"new-privileges", "seccomp-unconfined"}, ""},
		{"cap:NOT_A_CAP", nil, `"NOT_A_CAP" is not a Linux capability`},
		{"root,sudo", nil, `"sudo" is not a privilege: want cap:NAME, root`},
		{"cap:", nil, "is not a Linux capability"},
		{strings.Repeat("root,", 1000), nil, "at most 4096"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) error %v, want one saying %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got.Sorted(), cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) || len(a)+len(b) == 0 })); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestDeclared(t *testing.T) {
	got, err := Declared(map[string]string{Label: "cap:NET_BIND_SERVICE,root", "other": "x"})
	if err != nil || got.String() != "cap:NET_BIND_SERVICE,root" {
		t.Errorf("Declared = %q, %v", got.String(), err)
	}
	if got, err := Declared(nil); err != nil || len(got) != 0 {
		t.Errorf("Declared(nil) = %v, %v; want nothing", got, err)
	}
	if _, err := Declared(map[string]string{Label: "everything"}); err == nil || !strings.Contains(err.Error(), Label) {
		t.Errorf("a bad label: %v; want an error naming the label", err)
	}
}

func ptr(b bool) *bool { return &b }

func TestAskedAndMissing(t *testing.T) {
	set := func(s string) Set {
		p, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name              string
		sec               Request
		declared, allowed string
		asked, missing    []string
	}{
		{"nothing asked", Request{}, "", "", nil, nil},
		{"strict values ask nothing", Request{ReadOnlyRootfs: ptr(true), NoNewPrivileges: ptr(true), Seccomp: "default", Network: "none"}, "", "", nil, nil},
		{"each wide value", Request{CapAdd: []string{"NET_ADMIN", "CAP_SYS_ADMIN"}, ReadOnlyRootfs: ptr(false), NoNewPrivileges: ptr(false), Seccomp: "unconfined", Network: "host"}, "", "",
			[]string{"cap:NET_ADMIN", "cap:SYS_ADMIN", "host-network", "new-privileges", "seccomp-unconfined", "writable-root"},
			[]string{"cap:NET_ADMIN", "cap:SYS_ADMIN", "host-network", "new-privileges", "seccomp-unconfined", "writable-root"}},
		{"declared by the image", Request{CapAdd: []string{"net_bind_service"}, Network: "host"}, "cap:NET_BIND_SERVICE,host-network", "",
			[]string{"cap:NET_BIND_SERVICE", "host-network"}, nil},
		{"allowed by the node", Request{Network: "host", CapAdd: []string{"NET_RAW"}}, "", "host-network",
			[]string{"cap:NET_RAW", "host-network"}, []string{"cap:NET_RAW"}},
		{"one declared, one not", Request{CapAdd: []string{"NET_BIND_SERVICE", "NET_ADMIN"}}, "cap:NET_BIND_SERVICE", "",
			[]string{"cap:NET_ADMIN", "cap:NET_BIND_SERVICE"}, []string{"cap:NET_ADMIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := Asked(tt.sec)
			if diff := cmp.Diff(tt.asked, nilIfEmpty(asked.Sorted())); diff != "" {
				t.Errorf("Asked (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.missing, Missing(asked, set(tt.declared), set(tt.allowed))); diff != "" {
				t.Errorf("Missing (-want +got):\n%s", diff)
			}
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestEffective(t *testing.T) {
	all, _ := Parse("cap:NET_BIND_SERVICE,cap:CHOWN,writable-root,new-privileges,seccomp-unconfined,host-network,root")
	tests := []struct {
		name     string
		declared Set
		sec      Request
		want     Grant
	}{
		{"nothing declared, nothing asked", Set{}, Request{}, Grant{}},
		{"everything declared is granted", all, Request{},
			Grant{Caps: []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}, WritableRoot: true, NewPrivileges: true, SeccompUnconfined: true, HostNetwork: true}},
		{"drop takes away", all, Request{Drop: []string{"cap:CHOWN", "host-network", "writable-root"}},
			Grant{Caps: []string{"CAP_NET_BIND_SERVICE"}, NewPrivileges: true, SeccompUnconfined: true}},
		{"strict values take away", all, Request{ReadOnlyRootfs: ptr(true), NoNewPrivileges: ptr(true), Seccomp: "default", Network: "none"},
			Grant{Caps: []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}}},
		{"asked is added", Set{}, Request{CapAdd: []string{"sys_time"}, ReadOnlyRootfs: ptr(false)},
			Grant{Caps: []string{"CAP_SYS_TIME"}, WritableRoot: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drop, err := ParseList(tt.sec.Drop)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, Effective(tt.declared, tt.sec, drop)); diff != "" {
				t.Errorf("Effective (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParse: a label or setting from anywhere never panics, and what
// parses comes back the same from its own text.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "root", "cap:NET_BIND_SERVICE, writable-root", "cap:", "x,,y", "CAP:CAP_CHOWN\thost-network"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(set.String())
		if err != nil || again.String() != set.String() {
			t.Fatalf("Parse(%q) = %q, which parses to %q, %v", s, set.String(), again.String(), err)
		}
		for _, c := range set.Caps() {
			if _, ok := CapabilityName(c); !ok {
				t.Fatalf("Parse(%q) gave capability %q", s, c)
			}
		}
	})
}

func TestCapabilityName(t *testing.T) {
	for in, want := range map[string]string{"net_raw": "CAP_NET_RAW", "CAP_SYS_ADMIN": "CAP_SYS_ADMIN", "Chown": "CAP_CHOWN"} {
		got, ok := CapabilityName(in)
		if !ok || got != want {
			t.Errorf("CapabilityName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := CapabilityName("CAP_NOPE"); ok {
		t.Error("CAP_NOPE accepted")
	}
}
