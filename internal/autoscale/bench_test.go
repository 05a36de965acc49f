package autoscale

import (
	"fmt"
	"testing"

	"github.com/moatcloud/moat/internal/sched"
)

// benchInput is a cluster of 100 full nodes and 10 apps with 20
// replicas each left unplaced, and 4 pools of different sizes and prices.
func benchInput() ([]sched.Node, []sched.Request, []Pool) {
	var nodes []sched.Node
	for i := range 100 {
		nodes = append(nodes, sched.Node{Name: fmt.Sprintf("n%03d", i), Capacity: sched.Resources{MilliCPU: 2000, MemoryBytes: 2 * gib},
			Allocated: sched.Resources{MilliCPU: 1900, MemoryBytes: 2*gib - 100<<20}})
	}
	var reqs []sched.Request
	for i := range 10 {
		reqs = append(reqs, req(fmt.Sprintf("app%d", i), 20, 250+int64(i)*50, 128<<20+int64(i)<<20))
	}
	pools := []Pool{pool("a", 0, 40, 2, 0, local2), pool("b", 0, 40, 0, 1, cx22), pool("c", 0, 40, 0, 0, cx32), pool("d", 0, 40, 0, 0, s2)}
	return nodes, reqs, pools
}

// BenchmarkUp: one scale-up decision for 200 unplaced replicas of 10
// apps over 4 pools, against the baseline of what the reconcile pass
// spends finding them unplaceable (sched.Place of the same requests on
// 100 full nodes): the decision's cost as a ratio of that.
//
//	go test -run XXX -bench 'Up|PlaceBaseline' ./internal/autoscale
func BenchmarkUp(b *testing.B) {
	_, reqs, pools := benchInput()
	for b.Loop() {
		Up(reqs, pools, nil, nil)
	}
}

func BenchmarkPlaceBaseline(b *testing.B) {
	nodes, reqs, _ := benchInput()
	for b.Loop() {
		for _, r := range reqs {
			sched.Place(nodes, r)
		}
	}
}

// BenchmarkDown: one scale-down decision over 40 pool nodes (half idle,
// half with replicas to fit elsewhere) in a cluster of 140.
func BenchmarkDown(b *testing.B) {
	nodes, _, _ := benchInput()
	in := DownInput{Pools: []Pool{pool("a", 0, 100, 40, 0, local2)}}
	for i := range 40 {
		n := Node{Name: fmt.Sprintf("a%02d", i), Pool: "a", Ready: true,
			Sched: sched.Node{Name: fmt.Sprintf("a%02d", i), Capacity: sched.Resources{MilliCPU: 2000, MemoryBytes: 2 * gib}}}
		if i%2 == 1 {
			n.Sched.Allocated = sched.Resources{MilliCPU: 500, MemoryBytes: 256 << 20}
			n.Apps = []sched.Request{req("web", 1, 500, 256<<20)}
		}
		in.Nodes = append(in.Nodes, n)
		nodes = append(nodes, n.Sched)
	}
	in.Cluster = nodes
	for b.Loop() {
		Down(in)
	}
}
