package sample

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fixture is a /proc, /sys and cgroup v2 tree in a temporary directory,
// laid out as on a real machine.
type fixture struct{ root string }

func newFixture(t *testing.T) fixture {
	f := fixture{t.TempDir()}
	f.write(t, "sys/block/vda/device/vendor", "0x1af4")
	f.write(t, "sys/block/loop0/size", "0")
	return f
}

func (f fixture) write(t *testing.T, rel, content string) {
	t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f fixture) options(v2 bool) Options {
	return Options{Proc: filepath.Join(f.root, "proc"), Sys: filepath.Join(f.root, "sys"), Cgroup: filepath.Join(f.root, "cgroup"), V2: v2, Disk: f.root}
}

func netDev(lines ...string) string {
	return "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets\n" + strings.Join(lines, "\n") + "\n"
}

func (f fixture) node(t *testing.T, busy, total int, read, written, rx, tx int) {
	f.write(t, "proc/stat", "cpu "+num(busy)+" 0 0 "+num(total-busy)+" 0 0 0 0 0 0\ncpu0 0 0 0 0\ncpu1 0 0 0 0\n")
	f.write(t, "proc/loadavg", "0.75 0.5 0.25 1/100 42\n")
	f.write(t, "proc/meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 400 kB\n")
	f.write(t, "proc/diskstats", " 254 0 vda 1 0 "+num(read/512)+" 0 1 0 "+num(written/512)+" 0 0 0 0\n 254 1 vda1 1 0 9999 0 1 0 9999 0 0 0 0\n 7 0 loop0 1 0 9999 0 1 0 9999 0 0 0 0\n")
	f.write(t, "proc/net/dev", netDev("lo: 999 0 0 0 0 0 0 0 999 0 0 0 0 0 0 0", "eth0: "+num(rx)+" 0 0 0 0 0 0 0 "+num(tx)+" 0 0 0 0 0 0 0"))
}

func num(n int) string { return strconv.Itoa(n) }

func TestNodeFixture(t *testing.T) {
	f := newFixture(t)
	s := New(f.options(true))
	t0 := time.Unix(1000, 0)
	f.node(t, 100, 1000, 0, 0, 0, 0)
	n := s.Node(t0)
	if !math.IsNaN(n.CPU) || !math.IsNaN(n.DiskRead) || !math.IsNaN(n.NetRx) {
		t.Errorf("first sample has rates %+v, want NaN", n)
	}
	if n.Load1 != 0.75 || n.MemTotal != 1024000 || n.MemUsed != 600*1024 {
		t.Errorf("first sample %+v", n)
	}
	if !(n.DiskTotal > 0 && n.DiskUsed > 0 && n.DiskUsed <= n.DiskTotal) {
		t.Errorf("disk %v of %v", n.DiskUsed, n.DiskTotal)
	}
	// 10 s later: half the ticks busy on two CPUs, 10 KiB read, 20 KiB
	// written, 1000 and 2000 bytes over eth0 (lo and vda1 do not count).
	f.node(t, 600, 2000, 10240, 20480, 1000, 2000)
	n = s.Node(t0.Add(10 * time.Second))
	want := Node{CPU: 1, DiskRead: 1024, DiskWrite: 2048, NetRx: 100, NetTx: 200}
	if n.CPU != want.CPU || n.DiskRead != want.DiskRead || n.DiskWrite != want.DiskWrite || n.NetRx != want.NetRx || n.NetTx != want.NetTx {
		t.Errorf("second sample %+v, want rates %+v", n, want)
	}
	// Counters going backwards (a reset) give unknown rates, not huge ones.
	f.node(t, 600, 2000, 0, 0, 0, 0)
	n = s.Node(t0.Add(20 * time.Second))
	if !math.IsNaN(n.DiskRead) || !math.IsNaN(n.NetRx) || !math.IsNaN(n.CPU) {
		t.Errorf("after a reset %+v, want NaN rates", n)
	}
	// Unreadable files: unknown values, never a failure.
	os.RemoveAll(filepath.Join(f.root, "proc"))
	n = s.Node(t0.Add(30 * time.Second))
	if !math.IsNaN(n.Load1) || !math.IsNaN(n.MemUsed) || !math.IsNaN(n.CPU) {
		t.Errorf("without /proc %+v, want NaN", n)
	}
}

func TestContainersV2Fixture(t *testing.T) {
	f := newFixture(t)
	s := New(f.options(true))
	cg := "cgroup/moat/app-aaaaaa/"
	set := func(usageUsec, current, inactive, rx, tx int, max string) {
		f.write(t, cg+"cpu.stat", "usage_usec "+num(usageUsec)+"\nuser_usec 1\nsystem_usec 2\n")
		f.write(t, cg+"memory.current", num(current)+"\n")
		f.write(t, cg+"memory.stat", "anon 100\nfile 200\nactive_file 50\ninactive_file "+num(inactive)+"\n")
		f.write(t, cg+"memory.max", max+"\n")
		f.write(t, cg+"memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
		f.write(t, cg+"pids.current", "3\n")
		f.write(t, "proc/4242/net/dev", netDev("lo: "+num(rx)+" 0 0 0 0 0 0 0 "+num(tx)+" 0 0 0 0 0 0 0"))
	}
	targets := []Target{
		{ID: "app-aaaaaa", CgroupsPath: "/moat/app-aaaaaa", Pid: 4242},
		{ID: "app-gone00", CgroupsPath: "/moat/app-gone00", Pid: 4343},
	}
	t0 := time.Unix(1000, 0)
	set(1_000_000, 64<<20, 4<<20, 100, 200, "67108864")
	cs := s.Containers(t0, targets)
	if len(cs) != 2 {
		t.Fatalf("%d samples for 2 targets", len(cs))
	}
	c := cs[0]
	if !math.IsNaN(c.CPU) || !math.IsNaN(c.NetRx) || c.Mem != 60<<20 || c.MemLimit != 64<<20 || c.OOMKills != 1 || c.Pids != 3 {
		t.Errorf("first sample %+v", c)
	}
	g := cs[1]
	for i, v := range []float64{g.CPU, g.Mem, g.MemLimit, g.OOMKills, g.Pids, g.NetRx, g.NetTx} {
		if !math.IsNaN(v) {
			t.Errorf("container without a cgroup: value %d is %v, want NaN", i, v)
		}
	}
	// 2 s later: 1.5 s of CPU, 1000 and 4000 more bytes.
	set(2_500_000, 64<<20, 4<<20, 1100, 4200, "max")
	c = s.Containers(t0.Add(2*time.Second), targets[:1])[0]
	if c.CPU != 0.75 || c.NetRx != 500 || c.NetTx != 2000 || c.MemLimit != 0 {
		t.Errorf("second sample %+v, want 0.75 cores, 500 and 2000 bytes/s, no limit", c)
	}
	if len(s.prev) != 1 {
		t.Errorf("remembers %d containers, want the one still sampled", len(s.prev))
	}
	// A host-network container's interfaces are the node's: unknown.
	c = s.Containers(t0.Add(3*time.Second), []Target{{ID: "app-aaaaaa", CgroupsPath: "/moat/app-aaaaaa", Pid: 4242, HostNetwork: true}})[0]
	if !math.IsNaN(c.NetRx) || !math.IsNaN(c.NetTx) {
		t.Errorf("host network: %v %v, want NaN", c.NetRx, c.NetTx)
	}
}
