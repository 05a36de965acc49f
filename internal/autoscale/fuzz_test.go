package autoscale

import (
	"fmt"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/sched"
)

// FuzzUpDown: whatever the sizes (nodes report their own, and a pool's
// types come from a provider), Up and Down do not panic, never ask a pool
// for more than its max leaves, note every pool and node, and never
// retire a pool below its min.
func FuzzUpDown(f *testing.F) {
	f.Add(int64(2000), int64(2<<30), int64(500), int64(256<<20), 7, 1, 4, 1, 1, int64(600))
	f.Add(int64(0), int64(0), int64(0), int64(0), 0, 0, 0, 0, 0, int64(0))
	f.Add(int64(-1), int64(1), int64(1<<62), int64(-5), 1000, 3, 2, 5, -1, int64(-3))
	f.Fuzz(func(t *testing.T, cpu, mem, reqCPU, reqMem int64, count, minN, maxN, ready, coming int, idle int64) {
		count, ready, coming = min(max(count, 0), 200), min(max(ready, 0), 50), min(max(coming, 0), 50)
		maxN = min(maxN, 100)
		typ := Type{Name: "t", MilliCPU: cpu, MemoryBytes: mem, Hourly: float64(idle % 7)}
		pools := []Pool{
			{Name: "a", Min: minN, Max: maxN, Ready: ready, Coming: coming, Types: []Type{typ}},
			{Name: "b", Min: 0, Max: maxN / 2, Types: []Type{typ, local2}, Labels: map[string]string{"x": "y"}},
		}
		reqs := []sched.Request{{App: "w", Count: count, Resources: sched.Resources{MilliCPU: reqCPU, MemoryBytes: reqMem}, Spread: count%2 == 0}}
		plan := Up(reqs, pools, nil, nil)
		if len(plan.Pools) != len(pools) {
			t.Fatalf("notes %v for %d pools", plan.Pools, len(pools))
		}
		for _, g := range plan.Grow {
			p := pools[0]
			if g.Pool == "b" {
				p = pools[1]
			}
			if g.N <= 0 || g.N > p.Max-p.Ready-p.Coming {
				t.Fatalf("grow %+v beyond pool %+v", g, p)
			}
		}
		now := time.Unix(1e9, 0)
		var nodes []Node
		var cluster []sched.Node
		for i := range ready {
			n := Node{Name: fmt.Sprintf("n%d", i), Pool: "a", Ready: true, IdleSince: now.Add(-time.Duration(idle) * time.Second),
				Sched: sched.Node{Name: fmt.Sprintf("n%d", i), Capacity: sched.Resources{MilliCPU: cpu, MemoryBytes: mem}}}
			if i%2 == 1 {
				n.Sched.Allocated = sched.Resources{MilliCPU: reqCPU, MemoryBytes: reqMem}
				n.Apps = []sched.Request{{App: "w", Count: 1, Resources: sched.Resources{MilliCPU: reqCPU, MemoryBytes: reqMem}}}
			}
			nodes = append(nodes, n)
			cluster = append(cluster, n.Sched)
		}
		notes := Down(DownInput{Now: now, Pools: pools, Nodes: nodes, Cluster: cluster})
		if len(notes) != len(nodes) {
			t.Fatalf("%d notes for %d nodes", len(notes), len(nodes))
		}
		retired := 0
		for _, n := range notes {
			if n.Reason == "" {
				t.Fatalf("%s: no reason", n.Node)
			}
			if n.Retire {
				retired++
			}
		}
		if retired > 0 && ready-retired < minN {
			t.Fatalf("retired %d of %d below min %d", retired, ready, minN)
		}
	})
}
