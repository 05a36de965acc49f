package sched

import "testing"

func TestRebalance(t *testing.T) {
	big := Resources{MilliCPU: 4000, MemoryBytes: 8 << 30}
	node := func(name string) Node { return Node{Name: name, Capacity: big} }
	three := []Node{node("n1"), node("n2"), node("n3")}
	req := func(existing map[string]int) Request {
		return Request{App: "web", Spread: true, Resources: Resources{MilliCPU: 100, MemoryBytes: 32 << 20}, Existing: existing}
	}
	tests := []struct {
		name  string
		nodes []Node
		req   Request
		want  string
	}{
		{"even", three, req(map[string]int{"n1": 1, "n2": 1, "n3": 1}), ""},
		{"as even as it can be", three, req(map[string]int{"n1": 2, "n2": 1, "n3": 1}), ""},
		{"a node came back empty", three, req(map[string]int{"n1": 2, "n2": 1}), "n1"},
		{"doubled up after a scale-down", three, req(map[string]int{"n1": 3, "n2": 1, "n3": 2}), "n1"},
		{"ties go by name", three, req(map[string]int{"n2": 2, "n3": 2}), "n2"},
		{"one replica never moves", three, req(map[string]int{"n1": 1}), ""},
		{"the empty node is cordoned", []Node{node("n1"), node("n2"), {Name: "n3", Capacity: big, Cordoned: true}}, req(map[string]int{"n1": 2, "n2": 1}), ""},
		{"the empty node is down", []Node{node("n1"), node("n2"), {Name: "n3", Capacity: big, Down: true}}, req(map[string]int{"n1": 2, "n2": 1}), ""},
		{"the empty node is full", []Node{node("n1"), node("n2"), {Name: "n3", Capacity: big, Allocated: big}}, req(map[string]int{"n1": 2, "n2": 1}), ""},
		{"no spread", three, Request{App: "web", Existing: map[string]int{"n1": 3}}, ""},
		{"pinned", three, Request{App: "web", Spread: true, Pinned: "n1", Existing: map[string]int{"n1": 3}}, ""},
	}
	for _, tt := range tests {
		if got := Rebalance(tt.nodes, tt.req); got != tt.want {
			t.Errorf("%s: Rebalance = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestRebalanceConverges: moving replicas one at a time as Rebalance says
// ends, with the most and least loaded nodes at most one apart.
func TestRebalanceConverges(t *testing.T) {
	var nodes []Node
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		nodes = append(nodes, Node{Name: n, Capacity: Resources{MilliCPU: 64000, MemoryBytes: 64 << 30}})
	}
	existing := map[string]int{"a": 9, "b": 1}
	for moves := 0; ; moves++ {
		if moves > 20 {
			t.Fatalf("no end after %d moves: %v", moves, existing)
		}
		req := Request{App: "web", Spread: true, Resources: Resources{MilliCPU: 100, MemoryBytes: 1 << 20}, Existing: existing}
		from := Rebalance(nodes, req)
		if from == "" {
			break
		}
		to := Place(nodes, Request{App: "web", Spread: true, Count: 1, Resources: req.Resources, Existing: existing}).Nodes[0]
		existing[from]--
		existing[to]++
	}
	lo, hi := 100, 0
	for _, n := range nodes {
		lo, hi = min(lo, existing[n.Name]), max(hi, existing[n.Name])
	}
	if hi-lo > 1 {
		t.Errorf("ended uneven: %v", existing)
	}
}
