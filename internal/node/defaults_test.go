package node_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// TestDefaults checks every strict default from inside a container.
func TestDefaults(t *testing.T) {
	n := newNode(t)
	r := probeReport(t, n, nodeapi.ContainerSpec{Name: "defaults"})
	checks := []struct {
		what      string
		got, want any
	}{
		{"uid (non-root by default)", r.UID, 65534},
		{"gid", r.GID, 65534},
		{"effective capabilities", r.CapEff, "0000000000000000"},
		{"bounding capabilities", r.CapBnd, "0000000000000000"},
		{"seccomp mode (2 = filter)", r.Seccomp, "2"},
		{"no new privileges", r.NoNewPrivs, "1"},
		{"root filesystem writable", r.RootWritable, false},
		{"/tmp writable", r.TmpWritable, true},
		{"/tmp is a tmpfs", r.TmpIsTmpfs, true},
		{"hostname", r.Hostname, "defaults"},
		{"memory limit", r.MemoryLimit, "268435456"},
		{"pids limit", r.PidsLimit, "512"},
		{"/proc/kcore masked", r.KcoreBytes, 0},
		{"cwd", r.Cwd, "/"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if !strings.HasPrefix(r.CPUQuota, "100000") {
		t.Errorf("cpu quota = %q, want one core (100000 per 100000 period)", r.CPUQuota)
	}
	if len(r.Interfaces) != 1 || !strings.HasPrefix(r.Interfaces[0], "lo:") || !strings.Contains(r.Interfaces[0], "up") {
		t.Errorf("interfaces = %v, want only loopback, up", r.Interfaces)
	}
	if !slices.Equal(r.Pids, []int{1}) {
		t.Errorf("visible pids = %v, want only its own (1): host processes must be hidden", r.Pids)
	}
	if r.ProcSysWrite == "ok" {
		t.Error("/proc/sys is writable")
	}
	if !slices.ContainsFunc(r.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		t.Errorf("env %v has no PATH", r.Env)
	}
}

// TestOverrides checks that a request can relax each default.
func TestOverrides(t *testing.T) {
	n := newNode(t)
	no := false
	r := probeReport(t, n, nodeapi.ContainerSpec{
		Name: "overrides", User: "1000:2000", Hostname: "custom", Env: []string{"FOO=bar"}, WorkDir: "/tmp",
		Resources: nodeapi.Resources{MemoryBytes: 64 << 20, MilliCPU: 500, Pids: 64},
		Security: nodeapi.Security{
			ReadOnlyRootfs: &no, CapAdd: []string{"NET_BIND_SERVICE"}, Seccomp: "unconfined",
		},
	})
	checks := []struct {
		what      string
		got, want any
	}{
		{"uid", r.UID, 1000},
		{"gid", r.GID, 2000},
		{"seccomp mode", r.Seccomp, "0"},
		{"effective capabilities (NET_BIND_SERVICE = bit 10)", r.CapEff, "0000000000000400"},
		{"ambient capabilities", r.CapAmb, "0000000000000400"},
		{"memory limit", r.MemoryLimit, "67108864"},
		{"pids limit", r.PidsLimit, "64"},
		{"hostname", r.Hostname, "custom"},
		{"cwd", r.Cwd, "/tmp"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// The probe reports while it starts: its start-up allowance, a core.
	if !strings.HasPrefix(r.CPUQuota, "100000") {
		t.Errorf("cpu quota while starting = %q, want a core", r.CPUQuota)
	}
	if !slices.Contains(r.Env, "FOO=bar") {
		t.Errorf("env %v lacks FOO=bar", r.Env)
	}
	// Writability as root, so file permissions are not what decides.
	rw := probeReport(t, n, nodeapi.ContainerSpec{Name: "read-write", User: "0", Security: nodeapi.Security{ReadOnlyRootfs: &no}})
	if !rw.RootWritable {
		t.Error("root filesystem not writable with readOnlyRootfs false")
	}
}

// TestImageUser: an image that names a user runs as it.
func TestImageUser(t *testing.T) {
	n := testclusterNodeWithImage(t, "probe-root:1", "--user", "0")
	r := probeReport(t, n, nodeapi.ContainerSpec{Name: "img-user", Image: "probe-root:1"})
	if r.UID != 0 || r.GID != 0 {
		t.Errorf("uid:gid = %d:%d, want the image's 0:0", r.UID, r.GID)
	}
	if r.CapEff != "0000000000000000" {
		t.Errorf("root in the container has capabilities %s, want none", r.CapEff)
	}
	if r.RootWritable {
		t.Error("root in the container can write the read-only root filesystem")
	}
}
