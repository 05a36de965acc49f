package node_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// pullMetrics reads the node's ring after a cursor and decodes it.
func pullMetrics(t *testing.T, n *testcluster.Node, after uint64, wait time.Duration) (nodeapi.MetricsPage, []nodeapi.MetricsRecord) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait+10*time.Second)
	defer cancel()
	p, err := n.Client.Metrics(ctx, after, nodeapi.MaxMetricsPage, wait)
	if err != nil {
		t.Fatalf("metrics after %d: %v", after, err)
	}
	recs := make([]nodeapi.MetricsRecord, len(p.Raw))
	for i, r := range p.Raw {
		if recs[i], err = nodeapi.DecodeMetrics(r.Data); err != nil {
			t.Fatalf("record %d: %v", r.Seq, err)
		}
	}
	return p, recs
}

// TestNodeMetrics: a real daemon sampling every second reports a real
// runc container's memory against its limit, its pids and, once it
// burns, its CPU; killed with SIGKILL, the next daemon keeps the ring and
// continues its sequence.
func TestNodeMetrics(t *testing.T) {
	n := newNode(t, "--metrics-interval", "1s")
	const limit = 64 << 20
	c := run(t, n, nodeapi.ContainerSpec{Name: "burner", Cmd: []string{"burn", "8"}, Resources: nodeapi.Resources{MemoryBytes: limit}})
	var cursor uint64
	var got nodeapi.MetricsGroup
	var node nodeapi.MetricsGroup
	waitFor(t, "a sample of the burning container", 30*time.Second, func() bool {
		p, recs := pullMetrics(t, n, cursor, 5*time.Second)
		if p.Gap || time.Duration(p.Interval) != time.Second {
			t.Fatalf("page after %d: gap %v, interval %s", cursor, p.Gap, time.Duration(p.Interval))
		}
		for i, rec := range recs {
			if p.Raw[i].Seq != cursor+1 {
				t.Fatalf("record %d after cursor %d", p.Raw[i].Seq, cursor)
			}
			cursor = p.Raw[i].Seq
			for _, g := range rec.Groups {
				switch {
				case g.Kind == nodeapi.GroupNode:
					node = g
				case g.Kind == nodeapi.GroupContainer && g.Name == c.ID:
					got = g
				}
			}
		}
		return got.Value("cpu") > 0.3 && got.Value("mem") >= 8<<20
	})
	if got.Value("mem") > limit || got.Value("mem_limit") != limit || !(got.Value("pids") >= 1) || got.Value("oom_kills") != 0 || got.Value("restarts") != 0 {
		t.Errorf("container group %s: %v; want mem under and mem_limit at %d, pids ≥ 1, no OOM kill or restart", got.Name, got.Values, limit)
	}
	if node.Value("containers") != 1 || !(node.Value("mem_total") > 0) || !(node.Value("cpu") > 0.3) {
		t.Errorf("node group %v; want 1 container, memory, cpu over 0.3", node.Values)
	}

	n.Kill9()
	n.Start()
	p, _ := pullMetrics(t, n, 0, 0)
	if p.Gap || p.Oldest != 1 || len(p.Raw) == 0 || p.Raw[0].Seq != 1 {
		t.Fatalf("after SIGKILL: gap %v, oldest %d, %d records; want the ring kept from 1", p.Gap, p.Oldest, len(p.Raw))
	}
	last := p.Newest
	if last < cursor {
		t.Fatalf("after SIGKILL the newest is %d, before it was %d", last, cursor)
	}
	p, recs := pullMetrics(t, n, last, 20*time.Second)
	if p.Gap || len(p.Raw) == 0 || p.Raw[0].Seq != last+1 {
		t.Fatalf("the restarted daemon's first record: gap %v, %d records; want seq %d", p.Gap, len(p.Raw), last+1)
	}
	found := false
	for _, g := range recs[0].Groups {
		found = found || g.Kind == nodeapi.GroupContainer && g.Name == c.ID
	}
	if !found {
		t.Errorf("the restarted daemon's first sample has no group for the re-adopted %s", c.ID)
	}
}

// TestEdgeRouteMetrics: an edge node's samples carry its routes'
// requests and latency, by host.
func TestEdgeRouteMetrics(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	n := newNode(t, "--edge", "--edge-http", addr, "--edge-https", "127.0.0.1:0", "--metrics-interval", "1s")
	api := app(t, n, "api1", "tenant1.api", []int{8080}, "serve", "127.0.0.1:8080")
	waitLog(t, n, api.ID, "serving")
	setLinks(t, n.Client, edgeTable("web.test", "tenant1.api", "api1"))
	waitFor(t, "web.test answered", 10*time.Second, func() bool {
		code, _, err := edgeGet(addr, "web.test")
		return err == nil && code == http.StatusOK
	})
	var cursor uint64
	var route nodeapi.MetricsGroup
	waitFor(t, "a sample counting web.test's requests", 30*time.Second, func() bool {
		edgeGet(addr, "web.test")
		p, recs := pullMetrics(t, n, cursor, 5*time.Second)
		cursor = p.Newest
		for _, rec := range recs {
			for _, g := range rec.Groups {
				if g.Kind == nodeapi.GroupRoute && g.Name != "web.test" {
					t.Fatalf("a route group for %q", g.Name)
				}
				if g.Kind == nodeapi.GroupRoute && g.Value("requests") > 0 {
					route = g
				}
			}
		}
		return route.Name != ""
	})
	if route.Value("errors") != 0 || !(route.Value("latency_avg") > 0) || !(route.Value("latency_max") >= route.Value("latency_avg")) || route.Value("latency_max") > 5 {
		t.Errorf("web.test: %v; want requests, no errors, latencies between 0 and 5 s", route.Values)
	}
}
