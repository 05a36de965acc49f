package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/privilege"
)

// baseConfig is the smallest Config Spec accepts.
func baseConfig() Config {
	return Config{ID: "c1", Args: []string{"/bin/app"}}
}

func mustSpec(t *testing.T, c Config) *specs.Spec {
	t.Helper()
	s, err := Spec(c)
	if err != nil {
		t.Fatalf("Spec: %v", err)
	}
	return s
}

// mountsAt returns the spec's mounts at dest, in order.
func mountsAt(s *specs.Spec, dest string) []specs.Mount {
	var out []specs.Mount
	for _, m := range s.Mounts {
		if m.Destination == dest {
			out = append(out, m)
		}
	}
	return out
}

func TestSpecNoCommand(t *testing.T) {
	for _, args := range [][]string{nil, {}} {
		c := baseConfig()
		c.Args = args
		s, err := Spec(c)
		if err == nil {
			t.Fatalf("Spec(Args: %#v) = %+v, want an error", args, s)
		}
		if !strings.Contains(err.Error(), "no command") || !strings.Contains(err.Error(), "c1") {
			t.Errorf("error %q: want it to name the container and say there is no command", err)
		}
	}
}

func TestSpecProcess(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		want specs.Process
	}{
		{
			name: "defaults",
			cfg:  func(*Config) {},
			want: specs.Process{
				Args: []string{"/bin/app"}, Cwd: "/",
				Capabilities: &specs.LinuxCapabilities{},
			},
		},
		{
			name: "custom",
			cfg: func(c *Config) {
				c.UID, c.GID = 1000, 1001
				c.Args = []string{"/bin/app", "serve"}
				c.Env = []string{"PATH=/bin", "A=1"}
				c.Cwd = "/srv"
				c.NoNewPrivs = true
			},
			want: specs.Process{
				User: specs.User{UID: 1000, GID: 1001},
				Args: []string{"/bin/app", "serve"}, Env: []string{"PATH=/bin", "A=1"}, Cwd: "/srv",
				Capabilities:    &specs.LinuxCapabilities{},
				NoNewPrivileges: true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			tt.cfg(&c)
			got := mustSpec(t, c).Process
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("Process (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpecResources(t *testing.T) {
	tests := []struct {
		name                  string
		mem, milli, pids      int64
		wantMem               int64
		wantQuota, wantShares int64
		wantPids              int64
	}{
		{name: "defaults", wantMem: 256 << 20, wantQuota: 100000, wantShares: 1024, wantPids: 512},
		{name: "half a core", mem: 64 << 20, milli: 500, pids: 100, wantMem: 64 << 20, wantQuota: 50000, wantShares: 512, wantPids: 100},
		{name: "two cores", milli: 2000, wantMem: 256 << 20, wantQuota: 200000, wantShares: 2048, wantPids: 512},
		{name: "shares floor", milli: 1, wantMem: 256 << 20, wantQuota: 100, wantShares: 2, wantPids: 512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			c.MemoryBytes, c.MilliCPU, c.Pids = tt.mem, tt.milli, tt.pids
			r := mustSpec(t, c).Linux.Resources
			type limits struct {
				Mem, Swap, Quota int64
				Period, Shares   uint64
				Pids             int64
			}
			got := limits{
				Mem: *r.Memory.Limit, Swap: *r.Memory.Swap,
				Quota: *r.CPU.Quota, Period: *r.CPU.Period, Shares: *r.CPU.Shares,
				Pids: *r.Pids.Limit,
			}
			want := limits{
				Mem: tt.wantMem, Swap: tt.wantMem,
				Quota: tt.wantQuota, Period: 100000, Shares: uint64(tt.wantShares),
				Pids: tt.wantPids,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("limits (-want +got):\n%s", diff)
			}
			wantDevices := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
			if diff := cmp.Diff(wantDevices, r.Devices); diff != "" {
				t.Errorf("devices (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpecCapabilities(t *testing.T) {
	tests := []struct {
		name string
		caps []string
		want []string
	}{
		// No capabilities: the sets are nil, which runc reads as empty.
		{name: "none", caps: nil, want: nil},
		{name: "two", caps: []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"}, want: []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			c.Caps = slices.Clone(tt.caps)
			got := mustSpec(t, c).Process.Capabilities
			if got == nil {
				t.Fatal("Process.Capabilities is nil, want the five sets")
			}
			sets := map[string][]string{
				"bounding": got.Bounding, "effective": got.Effective, "permitted": got.Permitted,
				"inheritable": got.Inheritable, "ambient": got.Ambient,
			}
			for name, set := range sets {
				if diff := cmp.Diff(tt.want, set); diff != "" {
					t.Errorf("%s set (-want +got):\n%s", name, diff)
				}
			}
			if c.Caps != nil {
				// The spec holds its own copy: changing the Config later must
				// not change it.
				c.Caps[0] = "CAP_SYS_ADMIN"
				if got.Bounding[0] == "CAP_SYS_ADMIN" {
					t.Error("the capability sets alias Config.Caps")
				}
			}
		})
	}
}

func TestSpecNamespacesAndSys(t *testing.T) {
	tests := []struct {
		name        string
		hostNetwork bool
		wantNS      []specs.LinuxNamespaceType
		wantSys     specs.Mount
	}{
		{
			name:   "own network",
			wantNS: []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace, specs.NetworkNamespace},
			wantSys: specs.Mount{
				Destination: "/sys", Type: "sysfs", Source: "sysfs",
				Options: []string{"nosuid", "noexec", "nodev", "ro"},
			},
		},
		{
			name:        "host network",
			hostNetwork: true,
			wantNS:      []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace},
			wantSys: specs.Mount{
				Destination: "/sys", Type: "bind", Source: "/sys",
				Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			c.HostNetwork = tt.hostNetwork
			s := mustSpec(t, c)
			var gotNS []specs.LinuxNamespaceType
			for _, ns := range s.Linux.Namespaces {
				if ns.Path != "" {
					t.Errorf("namespace %s joins %s, want a new one", ns.Type, ns.Path)
				}
				gotNS = append(gotNS, ns.Type)
			}
			if diff := cmp.Diff(tt.wantNS, gotNS); diff != "" {
				t.Errorf("namespaces (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]specs.Mount{tt.wantSys}, mountsAt(s, "/sys")); diff != "" {
				t.Errorf("/sys mount (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpecHiddenPaths(t *testing.T) {
	s := mustSpec(t, baseConfig())
	tests := []struct {
		name  string
		paths []string
		want  []string
	}{
		{"masked", s.Linux.MaskedPaths, []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"}},
		{"read-only", s.Linux.ReadonlyPaths, []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/irq"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range tt.want {
				if !slices.Contains(tt.paths, p) {
					t.Errorf("%s paths %q lack %s", tt.name, tt.paths, p)
				}
			}
		})
	}
}

func TestSpecRootAndHostname(t *testing.T) {
	tests := []struct {
		name         string
		readOnly     bool
		hostname     string
		wantRoot     specs.Root
		wantHostname string
	}{
		{name: "writable, hostname from id", wantRoot: specs.Root{Path: "rootfs"}, wantHostname: "c1"},
		{name: "read-only, own hostname", readOnly: true, hostname: "web", wantRoot: specs.Root{Path: "rootfs", Readonly: true}, wantHostname: "web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			c.ReadOnlyRootfs, c.Hostname = tt.readOnly, tt.hostname
			s := mustSpec(t, c)
			if diff := cmp.Diff(tt.wantRoot, *s.Root); diff != "" {
				t.Errorf("Root (-want +got):\n%s", diff)
			}
			if s.Hostname != tt.wantHostname {
				t.Errorf("Hostname = %q, want %q", s.Hostname, tt.wantHostname)
			}
		})
	}
}

func TestSpecMounts(t *testing.T) {
	tmp64 := specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=67108864"}}
	tests := []struct {
		name   string
		tmp    bool
		mounts []Mount
		// want maps a destination to the mounts expected there; nil means none.
		want map[string][]specs.Mount
	}{
		{
			name: "default tmp",
			tmp:  true,
			want: map[string][]specs.Mount{"/tmp": {tmp64}},
		},
		{
			name: "no tmp",
			want: map[string][]specs.Mount{"/tmp": nil},
		},
		{
			name:   "user bind on /tmp wins",
			tmp:    true,
			mounts: []Mount{{Type: "bind", Source: "/srv/tmp", Target: "/tmp"}},
			want: map[string][]specs.Mount{"/tmp": {
				{Destination: "/tmp", Type: "bind", Source: "/srv/tmp", Options: []string{"rbind", "nosuid", "nodev"}},
			}},
		},
		{
			name:   "user tmpfs on /tmp wins",
			tmp:    true,
			mounts: []Mount{{Type: "tmpfs", Target: "/tmp", Size: 1 << 20}},
			want: map[string][]specs.Mount{"/tmp": {
				{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=1048576"}},
			}},
		},
		{
			name: "binds and tmpfs",
			mounts: []Mount{
				{Type: "bind", Source: "/srv/data", Target: "/data"},
				{Type: "bind", Source: "/srv/conf", Target: "/etc/app", ReadOnly: true},
				{Type: "tmpfs", Target: "/cache", Size: 1 << 20},
				{Type: "tmpfs", Target: "/run/app"},
				{Type: "tmpfs", Target: "/ro", ReadOnly: true, Size: 4096},
			},
			want: map[string][]specs.Mount{
				"/tmp":     nil,
				"/data":    {{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "nosuid", "nodev"}}},
				"/etc/app": {{Destination: "/etc/app", Type: "bind", Source: "/srv/conf", Options: []string{"rbind", "nosuid", "nodev", "ro"}}},
				"/cache":   {{Destination: "/cache", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=1048576"}}},
				"/run/app": {{Destination: "/run/app", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=67108864"}}},
				"/ro":      {{Destination: "/ro", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=4096", "ro"}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			c.Tmp, c.Mounts = tt.tmp, tt.mounts
			s := mustSpec(t, c)
			for dest, want := range tt.want {
				if diff := cmp.Diff(want, mountsAt(s, dest)); diff != "" {
					t.Errorf("mounts at %s (-want +got):\n%s", dest, diff)
				}
			}
			// The system mounts are always there, first.
			var first []string
			for _, m := range s.Mounts[:7] {
				first = append(first, m.Destination)
			}
			wantFirst := []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}
			if diff := cmp.Diff(wantFirst, first); diff != "" {
				t.Errorf("system mounts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpecSeccomp(t *testing.T) {
	tests := []struct {
		name    string
		seccomp bool
		want    bool // a profile is set
	}{
		{"default profile", true, true},
		{"unconfined", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			c.Seccomp = tt.seccomp
			got := mustSpec(t, c).Linux.Seccomp
			if (got != nil) != tt.want {
				t.Fatalf("Linux.Seccomp = %v, want set: %v", got, tt.want)
			}
			if got == nil {
				return
			}
			if got.DefaultAction != specs.ActErrno {
				t.Errorf("DefaultAction = %s, want %s", got.DefaultAction, specs.ActErrno)
			}
			if len(got.Syscalls) == 0 {
				t.Error("the profile allows no syscalls")
			}
		})
	}
}

func TestSpecNoFile(t *testing.T) {
	tests := []struct {
		name   string
		noFile uint64
		want   []specs.POSIXRlimit
	}{
		{name: "unset", noFile: 0, want: nil},
		{name: "set", noFile: 4096, want: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 4096}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			c.NoFile = tt.noFile
			if diff := cmp.Diff(tt.want, mustSpec(t, c).Process.Rlimits); diff != "" {
				t.Errorf("Rlimits (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpecPassesThrough(t *testing.T) {
	c := baseConfig()
	c.CgroupsPath = "/moat/c1"
	c.Annotations = map[string]string{"moat.container": "c1"}
	s := mustSpec(t, c)
	if s.Linux.CgroupsPath != "/moat/c1" {
		t.Errorf("CgroupsPath = %q, want /moat/c1", s.Linux.CgroupsPath)
	}
	if diff := cmp.Diff(c.Annotations, s.Annotations); diff != "" {
		t.Errorf("Annotations (-want +got):\n%s", diff)
	}
	if s.Version == "" {
		t.Error("Version is empty")
	}
}

func TestResolve(t *testing.T) {
	img := ocispec.ImageConfig{
		Entrypoint: []string{"/bin/app"},
		Cmd:        []string{"serve"},
		Env:        []string{"PATH=/img/bin", "A=1", "B=2"},
		WorkingDir: "/app",
	}
	// want is what Resolve gives for an empty request against img; each
	// case changes it.
	want := func() Config {
		return Config{
			ID:             "c1",
			Args:           []string{"/bin/app", "serve"},
			Env:            []string{"PATH=/img/bin", "A=1", "B=2"},
			Cwd:            "/app",
			ReadOnlyRootfs: true,
			NoNewPrivs:     true,
			Tmp:            true,
			Seccomp:        true,
			CgroupsPath:    "/moat/c1",
			Annotations:    map[string]string{"moat.container": "c1"},
		}
	}
	tests := []struct {
		name   string
		req    Request
		img    *ocispec.ImageConfig // nil: img
		parent string               // "": "moat"
		want   func(*Config)
	}{
		{name: "image only", want: func(*Config) {}},
		{
			name: "entrypoint drops the image cmd",
			req:  Request{Entrypoint: []string{"/bin/sh", "-c"}},
			want: func(c *Config) { c.Args = []string{"/bin/sh", "-c"} },
		},
		{
			name: "entrypoint and cmd",
			req:  Request{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}},
			want: func(c *Config) { c.Args = []string{"/bin/sh", "-c", "echo hi"} },
		},
		{
			name: "cmd keeps the image entrypoint",
			req:  Request{Cmd: []string{"migrate", "--dry-run"}},
			want: func(c *Config) { c.Args = []string{"/bin/app", "migrate", "--dry-run"} },
		},
		{
			name: "nothing to run",
			img:  &ocispec.ImageConfig{},
			want: func(c *Config) {
				c.Args = []string{}
				c.Env = []string{defaultPath}
				c.Cwd = "/"
			},
		},
		{
			name: "env overrides in place",
			req:  Request{Env: []string{"B=20", "C=3", "A=10"}},
			want: func(c *Config) { c.Env = []string{"PATH=/img/bin", "A=10", "B=20", "C=3"} },
		},
		{
			name: "workdir from request",
			req:  Request{WorkDir: "/data"},
			want: func(c *Config) { c.Cwd = "/data" },
		},
		{
			name: "hostname",
			req:  Request{Hostname: "web"},
			want: func(c *Config) { c.Hostname = "web" },
		},
		{
			name: "security relaxed",
			req: Request{NoTmp: true, Privileges: privilege.Request{
				ReadOnlyRootfs: ptr(false), NoNewPrivileges: ptr(false),
				Seccomp: "unconfined", Network: "host",
			}},
			want: func(c *Config) {
				c.ReadOnlyRootfs, c.NoNewPrivs, c.Tmp, c.Seccomp, c.HostNetwork = false, false, false, false, true
			},
		},
		{
			name: "security explicit defaults",
			req: Request{Privileges: privilege.Request{
				ReadOnlyRootfs: ptr(true), NoNewPrivileges: ptr(true),
				Seccomp: "default", Network: "none",
			}},
			want: func(*Config) {},
		},
		{
			name: "capabilities normalised",
			req:  Request{Privileges: privilege.Request{CapAdd: []string{"net_bind_service", "CAP_CHOWN", "Sys_Ptrace"}}},
			want: func(c *Config) { c.Caps = []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SYS_PTRACE"} },
		},
		{
			name: "what the image declares it gets",
			img:  withLabel(img, "cap:net_bind_service, writable-root,host-network"),
			want: func(c *Config) {
				c.Caps, c.ReadOnlyRootfs, c.HostNetwork = []string{"CAP_NET_BIND_SERVICE"}, false, true
			},
		},
		{
			name: "a request takes declared privileges away",
			img:  withLabel(img, "cap:NET_BIND_SERVICE,cap:CHOWN,writable-root,host-network,seccomp-unconfined,new-privileges"),
			req: Request{Privileges: privilege.Request{
				Drop: []string{"cap:chown", "writable-root"}, Network: "none", Seccomp: "default", NoNewPrivileges: ptr(true),
			}},
			want: func(c *Config) { c.Caps = []string{"CAP_NET_BIND_SERVICE"} },
		},
		{
			name: "declared and asked capabilities together",
			img:  withLabel(img, "cap:NET_BIND_SERVICE"),
			req:  Request{Privileges: privilege.Request{CapAdd: []string{"CHOWN"}}},
			want: func(c *Config) { c.Caps = []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"} },
		},
		{
			name: "resources",
			req:  Request{MemoryBytes: 64 << 20, MilliCPU: 500, Pids: 64},
			want: func(c *Config) { c.MemoryBytes, c.MilliCPU, c.Pids = 64<<20, 500, 64 },
		},
		{
			name:   "nested cgroup parent",
			parent: "/moat.slice/node1",
			want:   func(c *Config) { c.CgroupsPath = "/moat.slice/node1/c1" },
		},
		{
			name: "mounts",
			req: Request{Mounts: []Mount{
				{Source: "/srv/data", Target: "/data"},
				{Type: "bind", Source: "/srv/conf", Target: "/etc/app", ReadOnly: true},
				{Type: "tmpfs", Target: "/cache", Size: 1 << 20},
			}},
			want: func(c *Config) {
				c.Mounts = []Mount{
					{Type: "bind", Source: "/srv/data", Target: "/data"},
					{Type: "bind", Source: "/srv/conf", Target: "/etc/app", ReadOnly: true},
					{Type: "tmpfs", Target: "/cache", Size: 1 << 20},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, parent := img, "moat"
			if tt.img != nil {
				im = *tt.img
			}
			if tt.parent != "" {
				parent = tt.parent
			}
			w := want()
			tt.want(&w)
			got := Resolve("c1", tt.req, im, parent)
			if diff := cmp.Diff(w, got); diff != "" {
				t.Errorf("Resolve (-want +got):\n%s", diff)
			}
		})
	}
}

func withLabel(img ocispec.ImageConfig, privileges string) *ocispec.ImageConfig {
	img.Labels = map[string]string{privilege.Label: privileges}
	return &img
}

func TestResolveKeepsImageIntact(t *testing.T) {
	img := ocispec.ImageConfig{
		Entrypoint: make([]string, 1, 8),
		Env:        make([]string, 1, 8),
	}
	img.Entrypoint[0], img.Env[0] = "/bin/app", "A=1"
	Resolve("c1", Request{Cmd: []string{"x"}, Env: []string{"A=2"}}, img, "moat")
	if got := img.Entrypoint[:2]; got[1] != "" {
		t.Errorf("Resolve wrote into the image's entrypoint array: %q", got)
	}
	if img.Env[0] != "A=1" || img.Env[:2][1] != "" {
		t.Errorf("Resolve changed the image's env: %q", img.Env[:2])
	}
}

func TestUserSpec(t *testing.T) {
	tests := []struct {
		name     string
		req, img string
		want     string
	}{
		{"request wins", "1000:1000", "app", "1000:1000"},
		{"image", "", "app", "app"},
		{"nobody", "", "", "65534:65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := UserSpec(Request{User: tt.req}, ocispec.ImageConfig{User: tt.img})
			if got != tt.want {
				t.Errorf("UserSpec(%q, %q) = %q, want %q", tt.req, tt.img, got, tt.want)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	tests := []struct {
		name       string
		base, over []string
		want       []string
	}{
		{name: "empty", want: []string{defaultPath}},
		{name: "path added first", base: []string{"A=1"}, want: []string{defaultPath, "A=1"}},
		{name: "image path kept", base: []string{"A=1", "PATH=/x"}, want: []string{"A=1", "PATH=/x"}},
		{name: "request path kept", base: []string{"A=1"}, over: []string{"PATH=/y"}, want: []string{"A=1", "PATH=/y"}},
		{name: "request path replaces image path", base: []string{"PATH=/x", "A=1"}, over: []string{"PATH=/y"}, want: []string{"PATH=/y", "A=1"}},
		{
			name: "override in place, new keys appended",
			base: []string{"PATH=/x", "A=1", "B=2"}, over: []string{"C=3", "A=10"},
			want: []string{"PATH=/x", "A=10", "B=2", "C=3"},
		},
		{name: "last duplicate wins", over: []string{"A=1", "A=2"}, want: []string{defaultPath, "A=2"}},
		{name: "empty value", base: []string{"PATH=/x", "A=1"}, over: []string{"A="}, want: []string{"PATH=/x", "A="}},
		{name: "value with =", base: []string{"PATH=/x"}, over: []string{"Q=a=b"}, want: []string{"PATH=/x", "Q=a=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := slices.Clone(tt.base)
			got := mergeEnv(tt.base, tt.over)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mergeEnv(%q, %q) (-want +got):\n%s", tt.base, tt.over, diff)
			}
			if diff := cmp.Diff(base, tt.base); diff != "" {
				t.Errorf("mergeEnv changed its base (-before +after):\n%s", diff)
			}
		})
	}
}

func TestResolveUser(t *testing.T) {
	passwd := []byte(`# users
root:x:0:0:root:/root:/bin/sh

app:x:1000:1001:App:/home/app:/sbin/nologin
#old:x:7:70:old:/:/bin/false
  spaced:x:300:301:Spaced:/:/bin/false
broken:x:abc:1:Broken:/:/bin/false
short:x:5:5
nobody:x:65534:65534:nobody:/:/sbin/nologin
`)
	group := []byte(`# groups
root:x:0:
staff:x:50:app

#ghosts:x:60:
wheel:x:10:root
`)
	tests := []struct {
		name             string
		spec             string
		passwd, group    []byte
		wantUID, wantGID uint32
		wantErr          string // a substring; "" means success
	}{
		{name: "uid in passwd takes its group", spec: "1000", passwd: passwd, wantUID: 1000, wantGID: 1001},
		{name: "uid not in passwd", spec: "4242", passwd: passwd, wantUID: 4242, wantGID: 4242},
		{name: "root uid", spec: "0", passwd: passwd, wantUID: 0, wantGID: 0},
		{name: "commented uid not found", spec: "7", passwd: passwd, wantUID: 7, wantGID: 7},
		{name: "uid:gid", spec: "1000:50", passwd: passwd, group: group, wantUID: 1000, wantGID: 50},
		{name: "uid:gid not in files", spec: "4242:4343", passwd: passwd, group: group, wantUID: 4242, wantGID: 4343},
		{name: "uid:0", spec: "1000:0", passwd: passwd, group: group, wantUID: 1000, wantGID: 0},
		{name: "name", spec: "app", passwd: passwd, wantUID: 1000, wantGID: 1001},
		{name: "name nobody", spec: "nobody", passwd: passwd, wantUID: 65534, wantGID: 65534},
		{name: "indented line", spec: "spaced", passwd: passwd, wantUID: 300, wantGID: 301},
		{name: "name:group", spec: "app:staff", passwd: passwd, group: group, wantUID: 1000, wantGID: 50},
		{name: "uid:group", spec: "4242:wheel", passwd: passwd, group: group, wantUID: 4242, wantGID: 10},
		{name: "name:gid", spec: "app:60", passwd: passwd, group: group, wantUID: 1000, wantGID: 60},
		{name: "unknown name", spec: "ghost", passwd: passwd, wantErr: `"ghost"`},
		{name: "commented name", spec: "#old", passwd: passwd, wantErr: `"#old"`},
		{name: "non-numeric uid field", spec: "broken", passwd: passwd, wantErr: `"broken"`},
		{name: "too few fields", spec: "short", passwd: passwd, wantErr: `"short"`},
		{name: "unknown group", spec: "app:admins", passwd: passwd, group: group, wantErr: `"admins"`},
		{name: "commented group", spec: "app:ghosts", passwd: passwd, group: group, wantErr: `"ghosts"`},
		{name: "no passwd, numeric", spec: "1234", wantUID: 1234, wantGID: 1234},
		{name: "no files, uid:gid", spec: "1234:5", wantUID: 1234, wantGID: 5},
		{name: "no passwd, name", spec: "app", wantErr: `"app"`},
		{name: "no group, group name", spec: "app:staff", passwd: passwd, wantErr: `"staff"`},
		{name: "uid too big", spec: "4294967296", passwd: passwd, wantErr: `"4294967296"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid, gid, err := ResolveUser(tt.spec, tt.passwd, tt.group)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ResolveUser(%q) = %d:%d, want an error", tt.spec, uid, gid)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not mention %s", err, tt.wantErr)
				}
				if !errors.Is(err, errs.ErrInvalid) {
					t.Errorf("error %q is not ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveUser(%q): %v", tt.spec, err)
			}
			if uid != tt.wantUID || gid != tt.wantGID {
				t.Errorf("ResolveUser(%q) = %d:%d, want %d:%d", tt.spec, uid, gid, tt.wantUID, tt.wantGID)
			}
		})
	}
}

func TestOverlayOptions(t *testing.T) {
	const overhead = len("lowerdir=") + len(",upperdir=/u,workdir=/w")
	var many []string
	for i := range 128 {
		many = append(many, filepath.Join("/var/lib/moat/layers/sha256", strings.Repeat(string(rune('a'+i%26)), 64)))
	}
	tests := []struct {
		name    string
		layers  []string
		want    string
		wantErr string
	}{
		{name: "one layer", layers: []string{"/l/1"}, want: "lowerdir=/l/1,upperdir=/u,workdir=/w"},
		{name: "top layer first", layers: []string{"/l/1", "/l/2", "/l/3"}, want: "lowerdir=/l/3:/l/2:/l/1,upperdir=/u,workdir=/w"},
		{name: "colon in a layer", layers: []string{"/l/1", "/l/a:b"}, wantErr: "/l/a:b"},
		{name: "comma in a layer", layers: []string{"/l/a,b", "/l/2"}, wantErr: "/l/a,b"},
		{name: "at the kernel's limit", layers: []string{"/" + strings.Repeat("x", maxMountData-overhead-1)}, want: "lowerdir=/" + strings.Repeat("x", maxMountData-overhead-1) + ",upperdir=/u,workdir=/w"},
		{name: "one byte over", layers: []string{"/" + strings.Repeat("x", maxMountData-overhead)}, wantErr: "squash"},
		{name: "too many layers", layers: many, wantErr: "squash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layers := slices.Clone(tt.layers)
			got, err := overlayOptions(tt.layers, "/u", "/w")
			if diff := cmp.Diff(layers, tt.layers); diff != "" {
				t.Errorf("overlayOptions reordered its argument (-before +after):\n%s", diff)
			}
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("overlayOptions = %.80q..., want an error", got)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("overlayOptions: %v", err)
			}
			if got != tt.want {
				t.Errorf("overlayOptions = %q, want %q", got, tt.want)
			}
			if len(got) > maxMountData {
				t.Errorf("options are %d bytes, over %d", len(got), maxMountData)
			}
		})
	}
}

func TestOverlayOptionsNoLayers(t *testing.T) {
	dir := t.TempDir()
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	got, err := overlayOptions(nil, upper, work)
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	want := "lowerdir=" + empty + ",upperdir=" + upper + ",workdir=" + work
	if got != want {
		t.Errorf("overlayOptions(nil) = %q, want %q", got, want)
	}
	fi, err := os.Stat(empty)
	if err != nil {
		t.Fatalf("the empty lower directory was not created: %v", err)
	}
	if !fi.IsDir() {
		t.Errorf("%s is not a directory", empty)
	}
}

func TestProcessStartTime(t *testing.T) {
	pid := os.Getpid()
	first, err := ProcessStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if first == 0 {
		t.Error("start time of this process is 0")
	}
	second, err := ProcessStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("start time changed between calls: %d, then %d", first, second)
	}
	if init, err := ProcessStartTime(1); err == nil && init > first {
		t.Errorf("pid 1 started at %d, after this process (%d)", init, first)
	}
	// Above the kernel's largest pid_max (2^22): never a process.
	if st, err := ProcessStartTime(1 << 30); err == nil {
		t.Errorf("ProcessStartTime(1<<30) = %d, want an error", st)
	}
}

func TestReadCounter(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: no file
		key     string
		want    int
		wantOK  bool
	}{
		{name: "memory.events", content: ptr("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n"), key: "oom_kill", want: 2, wantOK: true},
		{name: "memory.oom_control", content: ptr("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n"), key: "oom_kill", want: 7, wantOK: true},
		{name: "prefix of another key", content: ptr("oom_kill_disable 1\n"), key: "oom_kill"},
		{name: "zero", content: ptr("oom_kill 0\n"), key: "oom_kill", want: 0, wantOK: true},
		{name: "no trailing newline", content: ptr("max 1\noom_kill 4"), key: "oom_kill", want: 4, wantOK: true},
		{name: "missing key", content: ptr("max 1\n"), key: "oom_kill"},
		{name: "not a number", content: ptr("oom_kill many\n"), key: "oom_kill"},
		{name: "empty file", content: ptr(""), key: "oom_kill"},
		{name: "no file", key: "oom_kill"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "counters")
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := readCounter(path, tt.key)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("readCounter(%q) = %d, %v; want %d, %v", tt.key, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestLastError(t *testing.T) {
	long := strings.Repeat("x", 100<<10) // over bufio.Scanner's default line limit
	tests := []struct {
		name string
		log  *string // nil: no file
		want string
	}{
		{
			name: "last error wins, info ignored",
			log: ptr(`{"level":"info","msg":"starting","time":"2024-01-01T00:00:00Z"}
{"level":"error","msg":"first failure","time":"2024-01-01T00:00:01Z"}
{"level":"warning","msg":"a warning","time":"2024-01-01T00:00:02Z"}
{"level":"error","msg":"exec: \"/nope\": no such file or directory","time":"2024-01-01T00:00:03Z"}
{"level":"info","msg":"cleaning up","time":"2024-01-01T00:00:04Z"}
`),
			want: `exec: "/nope": no such file or directory`,
		},
		{
			name: "fatal after error",
			log:  ptr(`{"level":"error","msg":"e"}` + "\n" + `{"level":"fatal","msg":"f"}` + "\n"),
			want: "f",
		},
		{
			name: "no errors",
			log:  ptr(`{"level":"info","msg":"a"}` + "\n" + `{"level":"debug","msg":"b"}` + "\n"),
			want: "",
		},
		{
			name: "lines that are not JSON",
			log:  ptr("runc: panic\n" + `{"level":"error","msg":"boom"}` + "\n{not json\n"),
			want: "boom",
		},
		{
			name: "long message",
			log:  ptr(`{"level":"error","msg":"` + long + `"}` + "\n"),
			want: long,
		},
		{name: "empty", log: ptr(""), want: ""},
		{name: "no file", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "runc.log")
			if tt.log != nil {
				if err := os.WriteFile(path, []byte(*tt.log), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := lastError(path); got != tt.want {
				t.Errorf("lastError = %.80q, want %.80q", got, tt.want)
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"a\nb", "a b"},
		{"  start:\n\tcontainer failed \r\n\n  to run  ", "start: container failed to run"},
		{"\n\n", ""},
	}
	for _, tt := range tests {
		if got := oneLine(tt.in); got != tt.want {
			t.Errorf("oneLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
