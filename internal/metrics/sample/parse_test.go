package sample

import (
	"math"
	"testing"
)

const statFixture = `cpu  100 5 50 800 40 0 5 0 7 0
cpu0 50 2 25 400 20 0 3 0 0 0
cpu1 50 3 25 400 20 0 2 0 0 0
intr 1 2 3
ctxt 42
`

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    CPUTimes
		wantErr bool
	}{
		{"two cpus", statFixture, CPUTimes{Busy: 160, Total: 1000, CPUs: 2}, false},
		{"old kernel, four fields", "cpu 1 2 3 4\ncpu0 1 2 3 4\n", CPUTimes{Busy: 6, Total: 10, CPUs: 1}, false},
		{"guest fields not counted twice", "cpu 1 0 0 0 0 0 0 0 99 99\ncpu0 1 0 0 0\n", CPUTimes{Busy: 1, Total: 1, CPUs: 1}, false},
		{"no cpuN", "cpu 1 2 3 4\n", CPUTimes{}, true},
		{"no aggregate", "cpu0 1 2 3 4\n", CPUTimes{}, true},
		{"short", "cpu 1 2\ncpu0 1\n", CPUTimes{}, true},
		{"not a number", "cpu 1 2 x 4\ncpu0 1\n", CPUTimes{}, true},
		{"empty", "", CPUTimes{}, true},
	}
	for _, tt := range tests {
		got, err := ParseStat([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: got %+v, %v; want %+v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCores(t *testing.T) {
	tests := []struct {
		prev, cur CPUTimes
		want      float64
	}{
		{CPUTimes{0, 0, 2}, CPUTimes{50, 100, 2}, 1},
		{CPUTimes{10, 100, 4}, CPUTimes{110, 200, 4}, 4},
		{CPUTimes{10, 100, 4}, CPUTimes{10, 200, 4}, 0},
		{CPUTimes{10, 100, 4}, CPUTimes{10, 100, 4}, math.NaN()}, // no time
		{CPUTimes{10, 100, 4}, CPUTimes{5, 200, 4}, math.NaN()},  // backwards
	}
	for _, tt := range tests {
		if got := Cores(tt.prev, tt.cur); !same(got, tt.want) {
			t.Errorf("Cores(%+v, %+v) = %v, want %v", tt.prev, tt.cur, got, tt.want)
		}
	}
}

func TestParseLoadavg(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"1.42 2.34 1.35 1/132 1649\n", 1.42, false},
		{"0.00 0.00 0.00 1/1 1\n", 0, false},
		{"", 0, true},
		{"-1 0 0", 0, true},
		{"x 0 0", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLoadavg([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%q: got %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		in          string
		total, free uint64
		wantErr     bool
	}{
		{"MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:    600 kB\nBuffers: 1 kB\n", 1024000, 614400, false},
		{"MemAvailable: 5\nMemTotal: 7\n", 7, 5, false},
		{"MemTotal: 1000 kB\n", 0, 0, true}, // kernels before 3.14 have no MemAvailable
		{"MemTotal: x kB\nMemAvailable: 1 kB\n", 0, 0, true},
		{"MemTotal:\nMemAvailable: 1 kB\n", 0, 0, true},
		{"", 0, 0, true},
	}
	for _, tt := range tests {
		total, avail, err := ParseMeminfo([]byte(tt.in))
		if (err != nil) != tt.wantErr || total != tt.total || avail != tt.free {
			t.Errorf("%q: got %d, %d, %v; want %d, %d, error %v", tt.in, total, avail, err, tt.total, tt.free, tt.wantErr)
		}
	}
}

const diskstatsFixture = `   7       0 loop0 5 0 100 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 46250 7822 2000 177758 42087 61303 3000 235434 0 30784 422386 32781 37 13021584 8936 3917 256
 254       1 vda1 46000 7822 1900 177758 42087 61303 2900 235434 0 30784 422386 32781 37 13021584 8936 3917 256
 253       0 dm-0 10 0 1000 0 10 0 1000 0 0 0 0
   8       0 sda 1 0 10 0 1 0 20 0 0 0 0
`

func TestParseDiskstats(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		whole       map[string]bool
		read, write uint64
		wantErr     bool
	}{
		{"whole disks only", diskstatsFixture, map[string]bool{"vda": true, "sda": true}, (2000 + 10) * 512, (3000 + 20) * 512, false},
		{"none", diskstatsFixture, nil, 0, 0, false},
		{"empty", "", map[string]bool{"vda": true}, 0, 0, false},
		{"short line", "8 0 sda 1 2\n", map[string]bool{"sda": true}, 0, 0, true},
		{"bad sectors", "8 0 sda 1 0 x 0 1 0 20 0 0 0 0\n", map[string]bool{"sda": true}, 0, 0, true},
	}
	for _, tt := range tests {
		r, w, err := ParseDiskstats([]byte(tt.in), tt.whole)
		if (err != nil) != tt.wantErr || r != tt.read || w != tt.write {
			t.Errorf("%s: got %d, %d, %v; want %d, %d, error %v", tt.name, r, w, err, tt.read, tt.write, tt.wantErr)
		}
	}
}

const netDevFixture = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 52158515   20952    0    0    0     0          0         0 52158515   20952    0    0    0     0       0          0
  ifb0:       7       0    0    0    0     0          0         0        7       0    0    0    0     0       0          0
  eth0: 301051590   10721    0    0    0     0          0         0   671858    7151    0    0    0     0       0          0
vethab12: 100 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0
  wg0: 1000 1 0 0 0 0 0 0 2000 2 0 0 0 0 0 0
`

func TestParseNetDev(t *testing.T) {
	all := func(string) bool { return true }
	tests := []struct {
		name    string
		in      string
		count   func(string) bool
		rx, tx  uint64
		wantErr bool
	}{
		{"host", netDevFixture, HostInterface, 301051590 + 1000, 671858 + 2000, false},
		{"all", netDevFixture, all, 52158515 + 7 + 301051590 + 100 + 1000, 52158515 + 7 + 671858 + 200 + 2000, false},
		{"headers only", "a\nb\n", all, 0, 0, false},
		{"no header", "", all, 0, 0, true},
		{"no colon", "a\nb\neth0 1 2 3\n", all, 0, 0, true},
		{"short", "a\nb\neth0: 1 2 3\n", all, 0, 0, true},
		{"bad bytes", "a\nb\neth0: x 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0\n", all, 0, 0, true},
	}
	for _, tt := range tests {
		rx, tx, err := ParseNetDev([]byte(tt.in), tt.count)
		if (err != nil) != tt.wantErr || rx != tt.rx || tx != tt.tx {
			t.Errorf("%s: got %d, %d, %v; want %d, %d, error %v", tt.name, rx, tx, err, tt.rx, tt.tx, tt.wantErr)
		}
	}
}

func TestHostInterface(t *testing.T) {
	for name, want := range map[string]bool{
		"lo": false, "eth0": true, "ens3": true, "wg0": true, "veth1234": false, "ifb0": false,
		"docker0": false, "br-1a2b": false, "virbr0": false, "cni0": false, "bond0": true, "lo0": true,
	} {
		if got := HostInterface(name); got != want {
			t.Errorf("HostInterface(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseKeyed(t *testing.T) {
	tests := []struct {
		in, key string
		want    uint64
		wantErr bool
	}{
		{"usage_usec 12345\nuser_usec 10000\nsystem_usec 2345\n", "usage_usec", 12345, false},
		{"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill", 3, false},
		{"low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n", "oom_kill", 1, false},
		{"oom_kill_disable 0\nunder_oom 0\n", "oom_kill", 0, true}, // before Linux 4.13
		{"oom_kill x\n", "oom_kill", 0, true},
		{"", "x", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseKeyed([]byte(tt.in), tt.key)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%q %s: got %d, %v; want %d, error %v", tt.in, tt.key, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseValue(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"67108864\n", 67108864, false},
		{"max\n", 0, false},
		{"9223372036854771712\n", 0, false}, // v1's no limit
		{"0\n", 0, false},
		{"", 0, true},
		{"-1", 0, true},
		{"12 13", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseValue([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%q: got %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
