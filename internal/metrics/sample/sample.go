// Package sample reads a node's own figures and its containers' for the
// node's metrics ring: the machine's from /proc and statfs, each
// container's from its cgroup (v1 or v2) and from /proc/<pid>/net/dev,
// which shows the container's own network namespace.
//
// Why it is built this way:
//   - The standard library only: six small text formats, each parsed by a
//     pure function over bytes (table-tested, fuzzed), read into one reused
//     buffer, so a sample of fifty containers allocates almost nothing.
//     github.com/prometheus/procfs would parse more than is needed and
//     allocate a struct per file.
//   - Rates (cores, bytes/s) come from the previous sample of the same
//     thing, kept here; the first sample after start, or of a new
//     container, has its rates unknown (NaN), as has a counter that went
//     backwards.
//   - A file that cannot be read or parsed makes its value unknown (NaN),
//     never the sample: a container exiting between listing and reading is
//     normal.
//   - Memory is the working set on both cgroup versions: usage less the
//     inactive file cache (v2 memory.current − memory.stat inactive_file;
//     v1 memory.usage_in_bytes − memory.stat total_inactive_file), as
//     kubelet and cAdvisor count it. Cache the kernel drops before it
//     OOM-kills would make a container look near its limit when it is not.
package sample

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var nan = math.NaN()

// Options say where the sampler reads; the zero value reads the machine's.
type Options struct {
	Proc   string // default /proc
	Sys    string // default /sys
	Cgroup string // cgroup mount; default /sys/fs/cgroup
	// V2: the cgroup hierarchy is unified (runtime.CgroupMode() == "v2");
	// otherwise v1 controllers are mounted under Cgroup by name.
	V2 bool
	// Disk is a directory on the filesystem whose space the node reports
	// (its state directory).
	Disk string
}

// Node is a node's figures; NaN when unknown. Rates are per second.
type Node struct {
	CPU                 float64 // cores busy
	Load1               float64
	MemUsed, MemTotal   float64 // bytes: MemTotal − MemAvailable, MemTotal
	DiskUsed, DiskTotal float64 // bytes of the filesystem holding Options.Disk
	DiskRead, DiskWrite float64 // bytes/s over the whole physical disks
	NetRx, NetTx        float64 // bytes/s over the host's interfaces (HostInterface)
}

// Target is a container to sample: its ID, its cgroup path as given to
// runc (cgroupsPath, e.g. /moat/app-xxxxxx) and the pid of its init
// process (0 when not running: no network figures).
type Target struct {
	ID          string
	CgroupsPath string
	Pid         int
	// HostNetwork: the container shares the host's network namespace, so
	// its interfaces are the node's: its network figures are unknown.
	HostNetwork bool
}

// Container is one container's figures; NaN when unknown.
type Container struct {
	CPU      float64 // cores
	Mem      float64 // bytes, the working set
	MemLimit float64 // bytes; 0: none
	OOMKills float64 // since the cgroup was made
	Pids     float64
	NetRx    float64 // bytes/s in its own network namespace
	NetTx    float64
}

// Sampler reads samples. It is not safe for concurrent use: one loop
// owns it.
type Sampler struct {
	o   Options
	buf []byte

	node     nodePrev
	prev     map[string]containerPrev
	disks    map[string]bool
	disksAt  time.Time
	selfNet  uint64 // inode of the host's network namespace
	v1cpu    string // the v1 hierarchy holding cpuacct
	hostNetF func(string) bool

	nodeFiles struct{ stat, loadavg, meminfo, diskstats, netdev string }
}

type nodePrev struct {
	at          time.Time
	cpu         CPUTimes
	haveCPU     bool
	read, write uint64
	haveDisk    bool
	rx, tx      uint64
	haveNet     bool
}

type containerPrev struct {
	at      time.Time
	cpuNs   uint64
	haveCPU bool
	rx, tx  uint64
	haveNet bool
	seen    bool
	paths   *containerPaths
}

// containerPaths are a container's files, made once: a sample allocates
// no path.
type containerPaths struct {
	cgroupsPath                        string
	pid                                int
	cpu, usage, stat, limit, oom, pids string
	netDev                             string
	// ownNet: /proc/<pid>/ns/net was found to be a namespace of its own
	// (checked once per pid).
	ownNet bool
}

func (s *Sampler) paths(t Target) *containerPaths {
	p := &containerPaths{cgroupsPath: t.CgroupsPath, pid: t.Pid}
	if s.o.V2 {
		dir := filepath.Join(s.o.Cgroup, t.CgroupsPath)
		p.cpu, p.usage, p.stat = filepath.Join(dir, "cpu.stat"), filepath.Join(dir, "memory.current"), filepath.Join(dir, "memory.stat")
		p.limit, p.oom, p.pids = filepath.Join(dir, "memory.max"), filepath.Join(dir, "memory.events"), filepath.Join(dir, "pids.current")
	} else {
		mem := filepath.Join(s.o.Cgroup, "memory", t.CgroupsPath)
		p.cpu = filepath.Join(s.o.Cgroup, s.v1cpu, t.CgroupsPath, "cpuacct.usage")
		p.usage, p.stat = filepath.Join(mem, "memory.usage_in_bytes"), filepath.Join(mem, "memory.stat")
		p.limit, p.oom = filepath.Join(mem, "memory.limit_in_bytes"), filepath.Join(mem, "memory.oom_control")
		p.pids = filepath.Join(s.o.Cgroup, "pids", t.CgroupsPath, "pids.current")
	}
	if t.Pid > 0 && !t.HostNetwork {
		proc := filepath.Join(s.o.Proc, strconv.Itoa(t.Pid))
		p.netDev = filepath.Join(proc, "net/dev")
		p.ownNet = true
		if s.selfNet != 0 {
			st, err := os.Stat(filepath.Join(proc, "ns/net"))
			p.ownNet = err == nil && inode(st) != s.selfNet
		}
	}
	return p
}

// New returns a sampler.
func New(o Options) *Sampler {
	if o.Proc == "" {
		o.Proc = "/proc"
	}
	if o.Sys == "" {
		o.Sys = "/sys"
	}
	if o.Cgroup == "" {
		o.Cgroup = "/sys/fs/cgroup"
	}
	s := &Sampler{o: o, buf: make([]byte, 64<<10), prev: map[string]containerPrev{}, hostNetF: HostInterface}
	if st, err := os.Stat(filepath.Join(o.Proc, "self/ns/net")); err == nil {
		s.selfNet = inode(st)
	}
	f := &s.nodeFiles
	f.stat, f.loadavg, f.meminfo = filepath.Join(o.Proc, "stat"), filepath.Join(o.Proc, "loadavg"), filepath.Join(o.Proc, "meminfo")
	f.diskstats, f.netdev = filepath.Join(o.Proc, "diskstats"), filepath.Join(o.Proc, "net/dev")
	s.v1cpu = "cpuacct"
	if _, err := os.Stat(filepath.Join(o.Cgroup, "cpuacct")); err != nil {
		s.v1cpu = "cpu,cpuacct"
	}
	return s
}

// disksEvery is how often the list of whole disks is read again from sysfs.
const disksEvery = 10 * time.Minute

// Disks lists the whole physical disks under sys/block: those with a
// device behind them. Partitions are not in /sys/block; loop, ram, zram,
// device-mapper and md devices have no device link, and their I/O lands
// on a physical disk that is counted already.
func Disks(sys string) map[string]bool {
	out := map[string]bool{}
	ents, _ := os.ReadDir(filepath.Join(sys, "block"))
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(sys, "block", e.Name(), "device")); err == nil {
			out[e.Name()] = true
		}
	}
	return out
}

// read reads a whole small file into the sampler's buffer; the result is
// valid until the next read. Plain system calls, not os.File: a sample
// reads some 400 files, and os.Open's poller registration and finalizer
// cost a third again on top of the open, read and close.
func (s *Sampler) read(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for n < len(s.buf) {
		m, err := unix.Read(fd, s.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return s.buf[:n], nil
}

// Node samples the node at now.
func (s *Sampler) Node(now time.Time) Node {
	n := Node{CPU: nan, Load1: nan, MemUsed: nan, MemTotal: nan, DiskUsed: nan, DiskTotal: nan, DiskRead: nan, DiskWrite: nan, NetRx: nan, NetTx: nan}
	p := &s.node
	dt := now.Sub(p.at).Seconds()
	if b, err := s.read(s.nodeFiles.stat); err == nil {
		if t, err := ParseStat(b); err == nil {
			if p.haveCPU {
				n.CPU = Cores(p.cpu, t)
			}
			p.cpu, p.haveCPU = t, true
		}
	}
	if b, err := s.read(s.nodeFiles.loadavg); err == nil {
		if v, err := ParseLoadavg(b); err == nil {
			n.Load1 = v
		}
	}
	if b, err := s.read(s.nodeFiles.meminfo); err == nil {
		if t, a, err := ParseMeminfo(b); err == nil && a <= t {
			n.MemTotal, n.MemUsed = float64(t), float64(t-a)
		}
	}
	if s.o.Disk != "" {
		var fs unix.Statfs_t
		if unix.Statfs(s.o.Disk, &fs) == nil {
			n.DiskTotal = float64(fs.Blocks) * float64(fs.Bsize)
			n.DiskUsed = float64(fs.Blocks-fs.Bfree) * float64(fs.Bsize)
		}
	}
	if s.disks == nil || now.Sub(s.disksAt) > disksEvery {
		s.disks, s.disksAt = Disks(s.o.Sys), now
	}
	if b, err := s.read(s.nodeFiles.diskstats); err == nil {
		if r, w, err := ParseDiskstats(b, s.disks); err == nil {
			if p.haveDisk {
				n.DiskRead, n.DiskWrite = rate(p.read, r, dt), rate(p.write, w, dt)
			}
			p.read, p.write, p.haveDisk = r, w, true
		} else {
			p.haveDisk = false
		}
	}
	if b, err := s.read(s.nodeFiles.netdev); err == nil {
		if rx, tx, err := ParseNetDev(b, s.hostNetF); err == nil {
			if p.haveNet {
				n.NetRx, n.NetTx = rate(p.rx, rx, dt), rate(p.tx, tx, dt)
			}
			p.rx, p.tx, p.haveNet = rx, tx, true
		} else {
			p.haveNet = false
		}
	}
	p.at = now
	return n
}

// Containers samples the targets at now, in order. Rates of a container
// seen for the first time are unknown; what is remembered of containers
// no longer among the targets is forgotten.
func (s *Sampler) Containers(now time.Time, targets []Target) []Container {
	out := make([]Container, len(targets))
	for id, p := range s.prev {
		p.seen = false
		s.prev[id] = p
	}
	for i, t := range targets {
		p := s.prev[t.ID]
		out[i] = s.container(now, t, &p)
		p.at, p.seen = now, true
		s.prev[t.ID] = p
	}
	for id, p := range s.prev {
		if !p.seen {
			delete(s.prev, id)
		}
	}
	return out
}

func (s *Sampler) container(now time.Time, t Target, p *containerPrev) Container {
	c := Container{CPU: nan, Mem: nan, MemLimit: nan, OOMKills: nan, Pids: nan, NetRx: nan, NetTx: nan}
	if p.paths == nil || p.paths.cgroupsPath != t.CgroupsPath || p.paths.pid != t.Pid || (p.paths.netDev == "") != (t.Pid <= 0 || t.HostNetwork) {
		p.paths = s.paths(t)
		p.haveNet = false
	}
	f := p.paths
	dt := now.Sub(p.at).Seconds()
	var cpuNs uint64
	var cpuOK bool
	if s.o.V2 {
		var usec uint64
		if usec, cpuOK = s.keyed(f.cpu, "usage_usec"); cpuOK {
			cpuNs = usec * 1000
		}
	} else {
		cpuNs, cpuOK = s.value(f.cpu)
	}
	usage, usageOK := s.value(f.usage)
	inactiveKey, oomKey := "total_inactive_file", "oom_kill"
	if s.o.V2 {
		inactiveKey = "inactive_file"
	}
	inactive, inactiveOK := s.keyed(f.stat, inactiveKey)
	if v, ok := s.value(f.limit); ok {
		c.MemLimit = float64(v)
	}
	if v, ok := s.keyed(f.oom, oomKey); ok {
		c.OOMKills = float64(v)
	}
	if v, ok := s.value(f.pids); ok {
		c.Pids = float64(v)
	}
	if usageOK {
		c.Mem = float64(usage)
		if inactiveOK && inactive <= usage {
			c.Mem = float64(usage - inactive)
		}
	}
	if cpuOK {
		if p.haveCPU && dt > 0 && cpuNs >= p.cpuNs {
			c.CPU = float64(cpuNs-p.cpuNs) / 1e9 / dt
		}
		p.cpuNs, p.haveCPU = cpuNs, true
	} else {
		p.haveCPU = false
	}
	// The host's namespace after all (a host-network container), or
	// none: unknown, not the node's figures again.
	if f.netDev == "" || !f.ownNet {
		return c
	}
	b, err := s.read(f.netDev)
	if err != nil {
		p.haveNet = false
		return c
	}
	// Every interface counts, loopback too: moat gives a container a
	// namespace with only a loopback, over which the node delivers its
	// links and ingress (package ns), so that is its traffic.
	rx, tx, err := ParseNetDev(b, func(string) bool { return true })
	if err != nil {
		p.haveNet = false
		return c
	}
	if p.haveNet {
		c.NetRx, c.NetTx = rate(p.rx, rx, dt), rate(p.tx, tx, dt)
	}
	p.rx, p.tx, p.haveNet = rx, tx, true
	return c
}

func (s *Sampler) value(path string) (uint64, bool) {
	b, err := s.read(path)
	if err != nil {
		return 0, false
	}
	v, err := ParseValue(b)
	return v, err == nil
}

func (s *Sampler) keyed(path, key string) (uint64, bool) {
	b, err := s.read(path)
	if err != nil {
		return 0, false
	}
	v, err := ParseKeyed(b, key)
	return v, err == nil
}

// rate is a counter's change per second; NaN when it went backwards (a
// reset) or no time passed.
func rate(prev, cur uint64, dt float64) float64 {
	if cur < prev || dt <= 0 {
		return nan
	}
	return float64(cur-prev) / dt
}

func inode(st os.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Ino
	}
	return 0
}
