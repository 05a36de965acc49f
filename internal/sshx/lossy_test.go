package sshx_test

import (
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
)

// lossyNodes installs n nodes and reaches each through a relay shaped like
// a rented machine's link (delay, jitter, stalls) with 2 % of its packets
// lost each way.
func lossyNodes(tb testing.TB, n int, link testcluster.Link) (*testcluster.Cluster, *sshx.Pool, map[string]*sshx.Conn, []*testcluster.Relay) {
	c := testcluster.NewCluster(tb, n)
	pool := sshx.NewPool(sshx.Config{Signer: c.MasterKey})
	tb.Cleanup(pool.Close)
	conns := map[string]*sshx.Conn{}
	var relays []*testcluster.Relay
	for _, node := range c.Nodes {
		c.Install(node.Name)
		if err := c.DropPackets(node.Name, 0.02); err != nil {
			tb.Fatal(err)
		}
		r := testcluster.NewRelay(tb, node.Addr.String()+":22", link)
		relays = append(relays, r)
		target := c.Target(node.Name)
		target.Addr = r.Addr
		conns[node.Name] = pool.Add(target)
	}
	for name, conn := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := conn.NodeAPI().Ping(ctx)
		cancel()
		if err != nil {
			tb.Fatalf("node %s over its lossy link: %v", name, err)
		}
	}
	return c, pool, conns, relays
}

// downs records every time a connection leaves up, until stop is closed.
func downs(conns map[string]*sshx.Conn, stop chan struct{}) (func() []string, *sync.WaitGroup) {
	var mu sync.Mutex
	var seen []string
	var wg sync.WaitGroup
	for name, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				changed := conn.Changed()
				if state, since, err := conn.State(); state != sshx.Up {
					mu.Lock()
					seen = append(seen, fmt.Sprintf("%s %s at %s: %v", name, state, since.Format("15:04:05.000"), err))
					mu.Unlock()
				}
				select {
				case <-changed:
				case <-stop:
					return
				}
			}
		}()
	}
	return func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }, &wg
}

// TestSlowIsNotDead: nodes behind links that delay (150 ms ± 100 ms),
// stall (1–2 s, every 10 s on average here) and lose 2 % of their packets
// stay up while the master talks to them; a node that really dies on such
// a link is marked down.
func TestSlowIsNotDead(t *testing.T) {
	link := testcluster.RentedLink
	link.StallEvery = 10 * time.Second // more stalls in a short test
	link.FirstStall = 10 * time.Second // and surely one
	c, _, conns, relays := lossyNodes(t, 2, link)
	stop := make(chan struct{})
	seen, wg := downs(conns, stop)
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		for name, conn := range conns {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			if err := conn.NodeAPI().Ping(ctx); err != nil {
				t.Errorf("ping %s: %v", name, err)
			}
			cancel()
		}
		time.Sleep(500 * time.Millisecond) // paced calls, as a master's
	}
	close(stop)
	wg.Wait()
	if s := seen(); len(s) > 0 {
		t.Errorf("a slow link was taken for a dead node: %v", s)
	}
	for _, r := range relays {
		if r.Stalls.Load() == 0 {
			t.Errorf("relay %s never stalled: the test did not test stalls", r.Addr)
		}
	}
	if err := c.StopNode("n2"); err != nil {
		t.Fatal(err)
	}
	for {
		state, _, err := conns["n2"].State()
		if state == sshx.Down {
			t.Logf("dead node down: %v", err)
			break
		}
		select {
		case <-conns["n2"].Changed():
		case <-time.After(30 * time.Second):
			t.Fatal("a dead node on a lossy link was not marked down within 30 s")
		}
	}
}

// BenchmarkLossyLinks: three nodes behind rented-machine links (150 ms ±
// 100 ms, a 1–2 s stall every 30 s on average, 2 % packet loss each way)
// for MOAT_BENCH_LOSSY (10m): the false downs, per node-hour (goal 0);
// then, ten times, a node powered off on such a link: how long until it is
// down (goal ≤ 3 s).
//
//	go test -run XXX -bench LossyLinks -benchtime 1x -timeout 30m ./internal/sshx
func BenchmarkLossyLinks(b *testing.B) {
	run := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("MOAT_BENCH_LOSSY")); err == nil {
		run = d
	}
	c, _, conns, relays := lossyNodes(b, 3, testcluster.RentedLink)
	stop := make(chan struct{})
	seen, wg := downs(conns, stop)
	for end := time.Now().Add(run); time.Now().Before(end); time.Sleep(time.Second) {
		for _, conn := range conns {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			conn.NodeAPI().Ping(ctx)
			cancel()
		}
	}
	close(stop)
	wg.Wait()
	var stalls int64
	for _, r := range relays {
		stalls += r.Stalls.Load()
	}
	if s := seen(); len(s) > 0 {
		b.Logf("false downs: %v", s)
	}
	b.ReportMetric(float64(len(seen()))/(float64(len(conns))*run.Hours()), "false-downs/node-hour")
	b.ReportMetric(float64(stalls), "stalls")
	var took []time.Duration
	for range 10 {
		conn := conns["n1"]
		waitUp(b, conn)
		time.Sleep(time.Duration(mathrand.Int64N(int64(sshx.DefaultKeepaliveInterval))))
		t0 := time.Now()
		if err := c.StopNode("n1"); err != nil {
			b.Fatal(err)
		}
		for {
			changed := conn.Changed()
			if state, _, _ := conn.State(); state == sshx.Down {
				break
			}
			<-changed
		}
		took = append(took, time.Since(t0))
		if err := c.StartNode("n1"); err != nil {
			b.Fatal(err)
		}
		if err := c.DropPackets("n1", 0.02); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(ms(pct(took, 50)), "down-p50-ms")
	b.ReportMetric(ms(slices.Max(took)), "down-max-ms")
	b.ReportMetric(0, "ns/op")
}
