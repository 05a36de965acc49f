package sched

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const gi = 1 << 30

// node has milliCPU and GiB of memory, and labels as "key=value".
func node(name string, milliCPU, memGiB int64, labels ...string) Node {
	n := Node{Name: name, Capacity: Resources{milliCPU, memGiB * gi}, Labels: map[string]string{}}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		n.Labels[k] = v
	}
	return n
}

func alloc(n Node, milliCPU, memBytes int64) Node {
	n.Allocated = Resources{milliCPU, memBytes}
	return n
}

func down(n Node) Node     { n.Down = true; return n }
func cordoned(n Node) Node { n.Cordoned = true; return n }
func refuses(n Node) Node  { n.RefusesImage = true; return n }

// small is a replica's worth: 100m and 256Mi.
var small = Resources{100, gi / 4}

func TestPlace(t *testing.T) {
	spread3 := []Node{node("big", 8000, 32), node("n2", 1000, 4), node("n3", 1000, 4)}
	zoned := []Node{node("a1", 4000, 8, "zone=a"), node("a2", 3000, 6, "zone=a"), node("b1", 2000, 4, "zone=b"), node("b2", 2000, 4, "zone=b")}
	unzoned := []Node{node("a1", 4000, 8), node("a2", 3000, 6), node("b1", 2000, 4), node("b2", 2000, 4)}
	racked := []Node{node("a1", 4000, 8, "rack=a"), node("a2", 3000, 6, "rack=a"), node("b1", 2000, 4, "rack=b"), node("b2", 2000, 4, "rack=b")}
	tests := []struct {
		name  string
		nodes []Node
		req   Request
		want  Result
	}{
		{"fits by CPU", []Node{alloc(node("n1", 1000, 8), 800, 0), node("n2", 1000, 1)},
			Request{Count: 1, Resources: Resources{500, gi / 2}}, Result{Nodes: []string{"n2"}}},
		{"fits by memory", []Node{alloc(node("n1", 8000, 4), 0, 4*gi-gi/4), node("n2", 1000, 1)},
			Request{Count: 1, Resources: Resources{500, gi / 2}}, Result{Nodes: []string{"n2"}}},
		{"fills a node exactly", []Node{node("n1", 1000, 1)},
			Request{Count: 3, Resources: Resources{500, gi / 2}},
			Result{Nodes: []string{"n1", "n1"}, Unplaced: 1, Reason: "1 node lacks CPU"}},
		{"one byte short", []Node{alloc(node("n1", 1000, 1), 0, gi/2+1)},
			Request{Count: 1, Resources: Resources{0, gi / 2}}, Result{Unplaced: 1, Reason: "1 node lacks memory"}},
		{"labels", []Node{node("n1", 8000, 32, "disk=hdd"), node("n2", 1000, 4, "disk=ssd", "zone=a")},
			Request{Count: 2, Resources: small, Labels: map[string]string{"disk": "ssd"}}, Result{Nodes: []string{"n2", "n2"}}},
		{"label with an empty value must be present", []Node{node("n1", 8000, 32), node("n2", 1000, 4, "gpu=")},
			Request{Count: 1, Resources: small, Labels: map[string]string{"gpu": ""}}, Result{Nodes: []string{"n2"}}},
		{"cordoned", []Node{cordoned(node("n1", 8000, 32)), node("n2", 1000, 4)},
			Request{Count: 1, Resources: small}, Result{Nodes: []string{"n2"}}},
		{"refuses the image", []Node{refuses(node("n1", 8000, 32)), node("n2", 1000, 4)},
			Request{Count: 1, Resources: small}, Result{Nodes: []string{"n2"}}},
		{"down", []Node{down(node("n1", 8000, 32)), node("n2", 1000, 4)},
			Request{Count: 1, Resources: small}, Result{Nodes: []string{"n2"}}},
		{"pinned fits", []Node{node("big", 8000, 32), node("n1", 1000, 4)},
			Request{Count: 2, Resources: small, Pinned: "n1", Spread: true}, Result{Nodes: []string{"n1", "n1"}}},
		{"pinned node full", []Node{node("big", 8000, 32), alloc(node("n1", 1000, 4), 0, 4*gi)},
			Request{Count: 2, Resources: small, Pinned: "n1"}, Result{Unplaced: 2, Reason: "pinned node n1 lacks memory"}},
		{"pinned node fills up", []Node{node("big", 8000, 32), node("n1", 1000, 4)},
			Request{Count: 3, Resources: Resources{400, gi}, Pinned: "n1"},
			Result{Nodes: []string{"n1", "n1"}, Unplaced: 1, Reason: "pinned node n1 lacks CPU"}},
		{"pinned node down", []Node{node("big", 8000, 32), down(node("n1", 1000, 4))},
			Request{Count: 1, Resources: small, Pinned: "n1"}, Result{Unplaced: 1, Reason: "pinned node n1 is down"}},
		{"pinned node lacks a label", []Node{node("big", 8000, 32, "disk=ssd"), node("n1", 1000, 4)},
			Request{Count: 1, Resources: small, Pinned: "n1", Labels: map[string]string{"disk": "ssd"}},
			Result{Unplaced: 1, Reason: "pinned node n1 lacks labels disk=ssd"}},
		{"pinned node missing", []Node{node("big", 8000, 32)},
			Request{Count: 1, Resources: small, Pinned: "n9"}, Result{Unplaced: 1, Reason: "pinned node n9 not found"}},
		{"spread one each despite a big node", spread3,
			Request{Count: 3, Resources: small, Spread: true}, Result{Nodes: []string{"big", "n2", "n3"}}},
		{"spread 5 on 3 nodes is 2/2/1", spread3,
			Request{Count: 5, Resources: small, Spread: true}, Result{Nodes: []string{"big", "n2", "n3", "big", "n2"}}},
		{"spread respects existing replicas", spread3,
			Request{App: "web", Count: 2, Resources: small, Spread: true, Existing: map[string]int{"big": 2, "n2": 1, "gone": 5}},
			Result{Nodes: []string{"n3", "n2"}}},
		{"spread yields when only a crowded node fits", []Node{node("big", 8000, 32), alloc(node("n2", 1000, 4), 1000, 0)},
			Request{Count: 2, Resources: small, Spread: true, Existing: map[string]int{"big": 3}}, Result{Nodes: []string{"big", "big"}}},
		{"spread without zones follows the score", unzoned,
			Request{Count: 2, Resources: Resources{500, gi}, Spread: true}, Result{Nodes: []string{"a1", "a2"}}},
		{"spread across zones", zoned,
			Request{Count: 2, Resources: Resources{500, gi}, Spread: true}, Result{Nodes: []string{"a1", "b1"}}},
		{"zone spreading counts existing replicas", zoned,
			Request{Count: 2, Resources: Resources{500, gi}, Spread: true, Existing: map[string]int{"a1": 1}},
			Result{Nodes: []string{"b1", "a2"}}},
		{"zone label named by the request", racked,
			Request{Count: 2, Resources: Resources{500, gi}, Spread: true, ZoneLabel: "rack"}, Result{Nodes: []string{"a1", "b1"}}},
		{"no spread: the score decides", spread3,
			Request{Count: 3, Resources: small}, Result{Nodes: []string{"big", "big", "big"}}},
		{"no spread: equal nodes alternate", []Node{node("n2", 1000, 4), node("n1", 1000, 4)},
			Request{Count: 3, Resources: small}, Result{Nodes: []string{"n1", "n2", "n1"}}},
		{"balanced keeps CPU and memory even", []Node{alloc(node("a-skewed", 4000, 4), 2000, 0), alloc(node("b-even", 4000, 4), 1000, gi)},
			Request{Count: 1, Resources: Resources{1000, gi}}, Result{Nodes: []string{"b-even"}}},
		{"zero request fits any node", []Node{node("z", 0, 0), alloc(node("over", 1000, 1), 2000, 2*gi)},
			Request{Count: 2, Spread: true}, Result{Nodes: []string{"over", "z"}}},
		{"no capacity for a resource", []Node{node("n1", 0, 4)},
			Request{Count: 1, Resources: small}, Result{Unplaced: 1, Reason: "1 node lacks CPU"}},
		{"no capacity for an unneeded resource", []Node{node("n1", 0, 4)},
			Request{Count: 1, Resources: Resources{0, gi}}, Result{Nodes: []string{"n1"}}},
		{"count 0", spread3, Request{Count: 0, Resources: small}, Result{}},
		{"negative count", spread3, Request{Count: -1, Resources: small}, Result{}},
		{"empty node list", nil, Request{Count: 2, Resources: small}, Result{Unplaced: 2, Reason: "no nodes"}},
		{"empty node list, pinned", nil, Request{Count: 1, Pinned: "n1"}, Result{Unplaced: 1, Reason: "no nodes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Place(tt.nodes, tt.req)); diff != "" {
				t.Errorf("Place (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReason(t *testing.T) {
	zoneA := map[string]string{"zone": "a"}
	full := func(name string) Node { return alloc(node(name, 1000, 1, "zone=a"), 0, gi) }
	tests := []struct {
		name   string
		nodes  []Node
		req    Request
		placed []string
		want   string
	}{
		{"most common first, ties in filter order",
			[]Node{full("m1"), full("m2"), full("m3"), node("l1", 8000, 32, "zone=b"), node("l2", 8000, 32),
				down(node("d1", 8000, 32, "zone=a")), cordoned(node("c1", 8000, 32, "zone=a"))},
			Request{Count: 1, Resources: small, Labels: zoneA}, nil,
			"3 nodes lack memory, 2 lack labels zone=a, 1 down, 1 cordoned"},
		{"one node", []Node{alloc(node("n1", 1000, 4), 1000, 0)},
			Request{Count: 1, Resources: small}, nil, "1 node lacks CPU"},
		{"a node lacking both counts under CPU",
			[]Node{down(node("d", 1000, 4)), cordoned(node("c", 1000, 4)), alloc(node("both", 1000, 4), 1000, 4*gi), alloc(node("mem", 1000, 4), 0, 4*gi)},
			Request{Count: 1, Resources: small}, nil, "1 node down, 1 cordoned, 1 lacks CPU, 1 lacks memory"},
		{"signature refused", []Node{refuses(node("r1", 1000, 4)), refuses(node("r2", 1000, 4)), down(node("d", 1000, 4))},
			Request{Count: 1, Resources: small}, nil, "2 nodes do not accept the image's signature, 1 down"},
		{"plural first class", []Node{down(node("d1", 1000, 4)), down(node("d2", 1000, 4)), cordoned(node("c", 1000, 4))},
			Request{Count: 1, Resources: small}, nil, "2 nodes down, 1 cordoned"},
		{"first missing label by key", []Node{node("n1", 1000, 4), node("n2", 1000, 4, "disk=ssd"), node("n3", 1000, 4, "zone=a")},
			Request{Count: 1, Resources: small, Labels: map[string]string{"zone": "a", "disk": "ssd"}}, nil,
			"2 nodes lack labels disk=ssd, 1 lacks labels zone=a"},
		{"after some replicas fit", []Node{node("n1", 1000, 4), cordoned(node("n2", 1000, 4))},
			Request{Count: 4, Resources: Resources{400, gi}}, []string{"n1", "n1"}, "1 node cordoned, 1 lacks CPU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := Result{Nodes: tt.placed, Unplaced: tt.req.Count - len(tt.placed), Reason: tt.want}
			if diff := cmp.Diff(want, Place(tt.nodes, tt.req)); diff != "" {
				t.Errorf("Place (-want +got):\n%s", diff)
			}
		})
	}
}
