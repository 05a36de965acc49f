// Package runtime turns a container request into an OCI bundle and runs it
// under the runc binary: config.json generation with moat's strict
// defaults, the overlay root filesystem, the per-container shim that owns
// the container's stdio and exit status, and entering a container's
// namespaces to debug it from outside.
package runtime

import (
	"fmt"
	"path"
	"slices"
	"strconv"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Defaults applied when a request gives no limit: every container has
// memory, CPU and pids limits.
const (
	DefaultMemoryBytes = 256 << 20
	DefaultMilliCPU    = 1000
	DefaultPids        = 512
	DefaultTmpBytes    = 64 << 20
	NobodyID           = 65534
	cpuPeriod          = 100000
)

// Config is a container fully resolved: image and request merged, defaults
// applied, user looked up. Spec turns it into runc's config.json.
type Config struct {
	ID             string
	Args           []string
	Env            []string
	Cwd            string
	UID, GID       uint32
	Hostname       string
	ReadOnlyRootfs bool
	NoNewPrivs     bool
	Tmp            bool // tmpfs on /tmp
	Caps           []string
	Seccomp        bool
	HostNetwork    bool
	Mounts         []Mount
	MemoryBytes    int64
	MilliCPU       int64
	// StartMilliCPU is the CPU limit while the container starts, when
	// higher than MilliCPU: a program limited to 1% of a core takes
	// seconds to start. The node lowers it (UpdateCPU) once the container
	// is healthy. Its CPU weight is MilliCPU's throughout.
	StartMilliCPU int64
	Pids          int64
	NoFile        uint64 // RLIMIT_NOFILE; 0 leaves the shim's

	CgroupsPath string
	Annotations map[string]string
}

// Mount is a bind mount from the host or a tmpfs.
type Mount struct {
	Type     string // bind or tmpfs
	Source   string
	Target   string
	ReadOnly bool
	Size     int64
}

// Spec builds the OCI runtime spec for c. Pure: no I/O.
func Spec(c Config) (*specs.Spec, error) {
	if len(c.Args) == 0 {
		return nil, fmt.Errorf("container %s: no command: the image has no entrypoint or cmd, and the request gives none", c.ID)
	}
	caps := slices.Clone(c.Caps)
	s := &specs.Spec{
		Version: "1.0.2",
		Process: &specs.Process{
			User: specs.User{UID: c.UID, GID: c.GID},
			Args: c.Args,
			Env:  c.Env,
			Cwd:  orDefault(c.Cwd, "/"),
			// A non-root process keeps added capabilities only through the
			// ambient set; empty sets for everyone else.
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps,
			},
			NoNewPrivileges: c.NoNewPrivs,
		},
		Root:        &specs.Root{Path: "rootfs", Readonly: c.ReadOnlyRootfs},
		Hostname:    orDefault(c.Hostname, c.ID),
		Mounts:      mounts(c),
		Annotations: c.Annotations,
		Linux: &specs.Linux{
			Namespaces:    namespaces(c.HostNetwork),
			Resources:     resources(c),
			CgroupsPath:   c.CgroupsPath,
			MaskedPaths:   maskedPaths,
			ReadonlyPaths: readonlyPaths,
		},
	}
	if c.NoFile > 0 {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: c.NoFile, Soft: c.NoFile}}
	}
	if c.Seccomp {
		profile, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			return nil, fmt.Errorf("container %s: seccomp profile: %w", c.ID, err)
		}
		s.Linux.Seccomp = profile
	}
	return s, nil
}

// The /proc and /sys paths runc's own example spec hides or makes
// read-only: they leak host information or allow host changes.
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

func namespaces(hostNetwork bool) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
		{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
	}
	if !hostNetwork {
		// A new network namespace: runc brings up its loopback and nothing else.
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	return ns
}

func resources(c Config) *specs.LinuxResources {
	mem := orDefaultInt(c.MemoryBytes, DefaultMemoryBytes)
	milli := orDefaultInt(c.MilliCPU, DefaultMilliCPU)
	pids := orDefaultInt(c.Pids, DefaultPids)
	quota, period := cpuQuota(max(milli, c.StartMilliCPU))
	shares := uint64(milli * 1024 / 1000)
	if shares < 2 {
		shares = 2
	}
	return &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		// Swap equal to the limit: no swap beyond memory.
		Memory: &specs.LinuxMemory{Limit: &mem, Swap: &mem},
		CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares},
		Pids:   &specs.LinuxPids{Limit: &pids},
	}
}

// cpuQuota is a CPU limit as a CFS quota and period (microseconds).
func cpuQuota(milli int64) (int64, uint64) {
	return milli * cpuPeriod / 1000, cpuPeriod
}

// LimitMilliCPU is the CPU limit a container runs with once started.
func (c Config) LimitMilliCPU() int64 { return orDefaultInt(c.MilliCPU, DefaultMilliCPU) }

func mounts(c Config) []specs.Mount {
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
	if c.HostNetwork {
		// sysfs belongs to a network namespace; with the host's, bind it.
		ms[5] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
	}
	if c.Tmp && !hasTarget(c.Mounts, "/tmp") {
		ms = append(ms, tmpfs("/tmp", DefaultTmpBytes, false))
	}
	for _, m := range c.Mounts {
		if m.Type == "tmpfs" {
			ms = append(ms, tmpfs(m.Target, orDefaultInt(m.Size, DefaultTmpBytes), m.ReadOnly))
			continue
		}
		opts := []string{"rbind", "nosuid", "nodev"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		ms = append(ms, specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: opts})
	}
	return ms
}

func tmpfs(target string, size int64, ro bool) specs.Mount {
	opts := []string{"nosuid", "nodev", "mode=1777", "size=" + strconv.FormatInt(size, 10)}
	if ro {
		opts = append(opts, "ro")
	}
	return specs.Mount{Destination: path.Clean(target), Type: "tmpfs", Source: "tmpfs", Options: opts}
}

func hasTarget(ms []Mount, target string) bool {
	return slices.ContainsFunc(ms, func(m Mount) bool { return m.Target == target })
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func orDefaultInt(v, d int64) int64 {
	if v == 0 {
		return d
	}
	return v
}
