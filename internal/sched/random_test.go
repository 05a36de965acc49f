package sched

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// randomNodes is a snapshot of n nodes with up to maxCPU millicores and
// maxGiB of memory each (zero included), partly allocated, in zones a to c,
// a quarter with disk=ssd, about one in twenty cordoned and one in twenty down.
func randomNodes(r *rand.Rand, n int, maxCPU, maxGiB int64) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		c := Resources{r.Int64N(maxCPU + 1), r.Int64N(maxGiB+1) * gi}
		nodes[i] = Node{
			Name:      fmt.Sprintf("n%04d", i),
			Labels:    map[string]string{"zone": string(rune('a' + r.IntN(3)))},
			Capacity:  c,
			Allocated: Resources{r.Int64N(c.MilliCPU/2 + 1), r.Int64N(c.MemoryBytes/2 + 1)},
			Cordoned:  r.IntN(20) == 0,
			Down:      r.IntN(20) == 0,
		}
		if r.IntN(4) == 0 {
			nodes[i].Labels["disk"] = "ssd"
		}
	}
	return nodes
}

func randomRequest(r *rand.Rand, nodes []Node) Request {
	req := Request{
		App:       "web",
		Count:     r.IntN(30),
		Resources: Resources{r.Int64N(3) * 250, r.Int64N(3) * gi / 2},
		Spread:    r.IntN(2) == 0,
		Existing:  map[string]int{},
	}
	if r.IntN(4) == 0 {
		req.Labels = map[string]string{"disk": "ssd"}
	}
	for _, n := range nodes {
		if r.IntN(3) == 0 {
			req.Existing[n.Name] = r.IntN(3)
		}
	}
	if len(nodes) > 0 && r.IntN(5) == 0 {
		req.Pinned = nodes[r.IntN(len(nodes))].Name
	}
	return req
}

// fitsNow is the filters, written out plainly as the oracle.
func fitsNow(n Node, req Request, a Resources) bool {
	for k, v := range req.Labels {
		if got, ok := n.Labels[k]; !ok || got != v {
			return false
		}
	}
	r := req.Resources
	return !n.Down && !n.Cordoned && (req.Pinned == "" || req.Pinned == n.Name) &&
		(r.MilliCPU == 0 || a.MilliCPU+r.MilliCPU <= n.Capacity.MilliCPU) &&
		(r.MemoryBytes == 0 || a.MemoryBytes+r.MemoryBytes <= n.Capacity.MemoryBytes)
}

// TestPlaceRandom replays random placements against the rules: every
// replica lands on a node that fits, never over capacity, on a node with
// the fewest of the app's replicas when spreading; replicas are placed
// until none fits, and all are accounted for.
func TestPlaceRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		nodes := randomNodes(r, r.IntN(12), 4000, 8)
		req := randomRequest(r, nodes)
		got := Place(nodes, req)
		if len(got.Nodes)+got.Unplaced != req.Count || (got.Unplaced > 0) != (got.Reason != "") {
			t.Fatalf("case %d: %d placed + %d unplaced (reason %q), want %d", i, len(got.Nodes), got.Unplaced, got.Reason, req.Count)
		}
		allocs, counts := map[string]Resources{}, map[string]int{}
		for _, n := range nodes {
			allocs[n.Name], counts[n.Name] = n.Allocated, req.Existing[n.Name]
		}
		fewest := func() int {
			least := -1
			for _, n := range nodes {
				if fitsNow(n, req, allocs[n.Name]) && (least < 0 || counts[n.Name] < least) {
					least = counts[n.Name]
				}
			}
			return least
		}
		for _, name := range got.Nodes {
			j := slices.IndexFunc(nodes, func(n Node) bool { return n.Name == name })
			if j < 0 || !fitsNow(nodes[j], req, allocs[name]) {
				t.Fatalf("case %d: replica on %q, which does not fit\nnodes %+v\nrequest %+v", i, name, nodes, req)
			}
			if least := fewest(); req.Spread && counts[name] != least {
				t.Fatalf("case %d: replica on %q with %d replicas while a node with %d fits", i, name, counts[name], least)
			}
			a := allocs[name]
			allocs[name] = Resources{a.MilliCPU + req.Resources.MilliCPU, a.MemoryBytes + req.Resources.MemoryBytes}
			counts[name]++
		}
		for _, n := range nodes {
			if a := allocs[n.Name]; a.MilliCPU > n.Capacity.MilliCPU || a.MemoryBytes > n.Capacity.MemoryBytes {
				t.Fatalf("case %d: node %s allocated %+v over capacity %+v", i, n.Name, a, n.Capacity)
			}
		}
		if got.Unplaced > 0 && fewest() >= 0 {
			t.Fatalf("case %d: %d unplaced (%s) but a node fits", i, got.Unplaced, got.Reason)
		}
	}
}

// TestPlaceDeterministic: the same snapshot gives the same result in any
// node order, and Place leaves its input alone.
func TestPlaceDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		nodes := randomNodes(r, 40, 4000, 8)
		req := randomRequest(r, nodes)
		req.Count = 60
		before := slices.Clone(nodes)
		want := Place(nodes, req)
		if diff := cmp.Diff(before, nodes); diff != "" {
			t.Fatalf("Place changed its input (-before +after):\n%s", diff)
		}
		if diff := cmp.Diff(want, Place(nodes, req)); diff != "" {
			t.Fatalf("second Place differs (-first +second):\n%s", diff)
		}
		shuffled := slices.Clone(nodes)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if diff := cmp.Diff(want, Place(shuffled, req)); diff != "" {
			t.Fatalf("Place on shuffled nodes differs (-sorted +shuffled):\n%s", diff)
		}
	}
}

// BenchmarkPlace spreads 10,000 replicas over 1,000 nodes in one call.
func BenchmarkPlace(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	nodes := randomNodes(r, 1000, 16000, 64)
	req := Request{App: "web", Count: 10_000, Resources: Resources{100, gi / 4}, Spread: true, Existing: map[string]int{}}
	for _, n := range nodes[:100] {
		req.Existing[n.Name] = 1
	}
	count := 0
	for b.Loop() {
		res := Place(nodes, req)
		if res.Unplaced > 0 {
			b.Fatalf("%d unplaced: %s", res.Unplaced, res.Reason)
		}
		count += len(res.Nodes)
	}
	b.ReportMetric(float64(count)/b.Elapsed().Seconds(), "placements/s")
}
