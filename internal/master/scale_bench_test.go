package master_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkMasterScale: a real master holding 1,000 nodes over real SSH
// connections, with keepalives every 700 ms, a lease renewal every 6 s and
// an open event stream each. The nodes are SSH servers in this process on
// loopback (x/crypto/ssh) that answer the node API as simulated nodes
// (scale_node_test.go). Measured: the master's CPU over 65 s (long enough
// to include each node's once-a-minute self-description), its RSS, and
// the time from the first node's registration to all up. Goal: ≤ 0.25
// core, ≤ 300 MiB.
//
//	go test -run XXX -bench MasterScale -benchtime 1x ./internal/master
func BenchmarkMasterScale(b *testing.B) {
	const nodes = 1000
	testcluster.RequireRoot(b)
	fake, m, allUp := startSimCluster(b, nodes)
	time.Sleep(10 * time.Second) // settle: every node has its stream and lease
	b.ResetTimer()
	cpu0 := cpuTicks(b, m.Pid())
	start := time.Now()
	profiled := make(chan struct{})
	if out := os.Getenv("MOAT_BENCH_PROFILE"); out != "" {
		go func() {
			defer close(profiled)
			save(m.Client.HTTP, "http://master/debug/pprof/profile?seconds=60", filepath.Join(out, "cpu.pprof"))
		}()
	} else {
		close(profiled)
	}
	time.Sleep(65 * time.Second)
	<-profiled
	cores := float64(cpuTicks(b, m.Pid())-cpu0) / 100 / time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(cores, "master-cores")
	b.ReportMetric(rssMiB(b, m.Pid()), "master-rss-MiB")
	b.ReportMetric(allUp.Seconds(), "all-up-s")
	b.ReportMetric(float64(fake.stats.keepalives.Load())/float64(nodes), "keepalives/node")
	b.ReportMetric(0, "ns/op")
	if out := os.Getenv("MOAT_BENCH_PROFILE"); out != "" {
		for _, p := range []string{"heap", "goroutine"} {
			save(m.Client.HTTP, "http://master/debug/pprof/"+p, filepath.Join(out, p+".pprof"))
		}
	}
}

// startSimCluster starts n simulated nodes and a real master, registers
// the nodes and waits until the master has every one up. It returns how
// long that took from the first registration: connecting is part of it.
func startSimCluster(b testing.TB, n int) (*fakeNodes, *testcluster.Master, time.Duration) {
	b.Helper()
	keyPath := filepath.Join(b.TempDir(), "master_ed25519")
	masterKey, err := sshkey.GenerateKey(keyPath, "moat-master")
	if err != nil {
		b.Fatal(err)
	}
	fake := startFakeNodes(b, n, masterKey.PublicKey())
	m := testcluster.StartMaster(b, keyPath)
	ctx := context.Background()
	hostKey := sshkey.AuthorizedKey(fake.hostKey.PublicKey())
	t0 := time.Now()
	for i, addr := range fake.addrs {
		node := inventory.Node{Name: simName(i), Addr: addr, User: "root", HostKey: hostKey, Enrolled: time.Now()}
		if err := m.Client.RegisterNode(ctx, node.Registration()); err != nil {
			b.Fatal(err)
		}
	}
	for {
		ns, err := m.Client.Nodes(ctx)
		if err != nil {
			b.Fatal(err)
		}
		up := 0
		for _, node := range ns {
			if node.State == "up" {
				up++
			}
		}
		if up == n {
			return fake, m, time.Since(t0)
		}
		if time.Since(t0) > 5*time.Minute {
			b.Fatalf("%d of %d nodes up after 5 minutes", up, n)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func simName(i int) string { return fmt.Sprintf("sim%04d", i) }

// save writes what url answers to a file (profiles, for a look by hand).
func save(c *http.Client, url, path string) {
	resp, err := c.Get(url)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if f, err := os.Create(path); err == nil {
		io.Copy(f, resp.Body)
		f.Close()
	}
}

// cpuTicks is a process's user+system time in clock ticks (100 per second).
func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw)[strings.LastIndexByte(string(raw), ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func rssMiB(b *testing.B, pid int) float64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	return 0
}
