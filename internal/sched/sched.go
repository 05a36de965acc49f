// Package sched decides where replicas run. It is a pure function of a
// snapshot of the nodes and a request: no I/O, no clock, deterministic.
//
// Placement has two phases, as in the OpenStack and Kubernetes schedulers.
// Filters drop the nodes a replica cannot go to: another tenant's (a
// tenant's replicas run only on its own nodes and shared ones), down,
// cordoned, not the pinned node, refusing the image's signature, missing a required label,
// not enough CPU or memory left.
// Weighers rank the rest: least requested (free share after placing) and
// balanced (CPU and memory shares kept even), weighted 1:1, ties broken by
// node name. With Request.Spread two keys come before the weighers: the
// app's replicas on the node (a hard rule: a node with more is never chosen
// while one with fewer fits) and then its replicas in the node's zone (a
// soft rule: it yields to the node rule).
//
// Node names are expected to be unique; the order of the node slice does
// not change the result.
package sched

import (
	"cmp"
	"slices"
)

// Resources is an amount of CPU and memory.
type Resources struct {
	MilliCPU    int64 `json:"milliCPU"`
	MemoryBytes int64 `json:"memoryBytes"`
}

// Node is what the scheduler knows of one node.
type Node struct {
	Name      string
	Labels    map[string]string
	Capacity  Resources // what the node offers to containers
	Allocated Resources // already requested by replicas placed on it
	Cordoned  bool
	Down      bool
	// RefusesImage: the node runs only signed images, and no key it
	// trusts signed this one.
	RefusesImage bool
	// Tenant is whose replicas the node runs; a Shared node runs every
	// tenant's.
	Tenant string
	Shared bool
}

// Request asks for replicas of one app.
type Request struct {
	App       string
	Count     int               // replicas to place
	Resources Resources         // per replica
	Labels    map[string]string // every one must be on the node
	Spread    bool              // replicas of App on different nodes while another node fits (hard rule), then across zones
	Pinned    string            // if set, only this node (the app has volumes there)
	Existing  map[string]int    // replicas of App already on each node (by name), for spreading
	ZoneLabel string            // node label naming its zone; "" means "zone"
	Tenant    string            // the app's tenant: only its nodes and shared ones; "" means any node
}

// Result says where the replicas went and, for those that fit nowhere, why.
type Result struct {
	Nodes    []string // a node name per placed replica, in placement order
	Unplaced int      // replicas that fit nowhere
	Reason   string   // when Unplaced > 0: why, by node class, e.g. "3 nodes lack memory, 2 lack labels zone=a, 1 down"
}

// Place places req.Count replicas one after another, each time updating
// the chosen node's allocation and the app's count on it, so later
// replicas see earlier ones. Negative resources in the request count as
// zero. Neither nodes nor req is modified.
func Place(nodes []Node, req Request) Result {
	if req.Count <= 0 {
		return Result{}
	}
	s := newState(nodes, req)
	var res Result
	for placed := 0; placed < req.Count; placed++ {
		p := s.best()
		if p < 0 {
			res.Unplaced = req.Count - placed
			res.Reason = s.reason()
			break
		}
		s.place(p)
		res.Nodes = append(res.Nodes, s.name[p])
	}
	return res
}

// state is the per-call working copy of the snapshot. Nodes are indexed by
// their position in name order, so a smaller index wins ties; everything
// the per-replica loop touches lives in slices.
type state struct {
	req       Resources
	spread    bool
	pinned    string
	tenant    string
	labels    []label // required labels, sorted by key
	name      []string
	capacity  []Resources
	alloc     []Resources
	count     []int32 // the app's replicas on the node
	zone      []int32 // index into zoneCount and heaps
	class     []int   // first static filter the node fails, or pass
	score     []float64
	zoneCount []int32   // the app's replicas in the zone
	heaps     [][]int32 // per zone: nodes that fit, best first
}

func newState(nodes []Node, req Request) *state {
	n := len(nodes)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(nodes[a].Name, nodes[b].Name) })

	s := &state{
		req:      Resources{max(req.Resources.MilliCPU, 0), max(req.Resources.MemoryBytes, 0)},
		spread:   req.Spread,
		pinned:   req.Pinned,
		tenant:   req.Tenant,
		labels:   sortedLabels(req.Labels),
		name:     make([]string, n),
		capacity: make([]Resources, n),
		alloc:    make([]Resources, n),
		count:    make([]int32, n),
		zone:     make([]int32, n),
		class:    make([]int, n),
		score:    make([]float64, n),
	}
	zoneLabel := cmp.Or(req.ZoneLabel, "zone")
	zones := map[string]int32{}
	for p, i := range order {
		nd := &nodes[i]
		s.name[p], s.capacity[p], s.alloc[p] = nd.Name, nd.Capacity, nd.Allocated
		s.count[p] = int32(req.Existing[nd.Name])
		s.class[p] = s.staticClass(nd)
		if req.Spread { // without Spread every node is in one group
			z, ok := zones[nd.Labels[zoneLabel]]
			if !ok {
				z = int32(len(zones))
				zones[nd.Labels[zoneLabel]] = z
			}
			s.zone[p] = z
		}
	}
	s.zoneCount = make([]int32, max(len(zones), 1))
	s.heaps = make([][]int32, len(s.zoneCount))
	for p := range n {
		s.zoneCount[s.zone[p]] += s.count[p]
		if s.class[p] == pass && s.fits(p) {
			s.score[p] = s.weigh(p)
			s.heaps[s.zone[p]] = append(s.heaps[s.zone[p]], int32(p))
		}
	}
	for _, h := range s.heaps { // a sorted slice is a heap
		slices.SortFunc(h, s.compare)
	}
	return s
}

// best returns the node the next replica goes to, or -1 if none fits.
func (s *state) best() int {
	best := int32(-1)
	for _, h := range s.heaps {
		if len(h) > 0 && (best < 0 || s.before(h[0], best)) {
			best = h[0]
		}
	}
	return int(best)
}

// place puts a replica on node p, the top of its zone's heap.
func (s *state) place(p int) {
	z := s.zone[p]
	s.alloc[p].MilliCPU += s.req.MilliCPU
	s.alloc[p].MemoryBytes += s.req.MemoryBytes
	s.count[p]++
	s.zoneCount[z]++
	h := s.heaps[z]
	if s.fits(p) {
		s.score[p] = s.weigh(p)
	} else {
		h[0] = h[len(h)-1]
		h = h[:len(h)-1]
		s.heaps[z] = h
	}
	s.down(h)
}

// Rebalance says which node one of an app's replicas should leave so that
// its spread gets better: the most crowded node (ties by name), when the
// node Place would choose for one more replica holds at least two fewer.
// "" when no single move helps. Moving one replica at a time with this
// never oscillates: each move lowers the largest count or the number of
// nodes holding it.
func Rebalance(nodes []Node, req Request) string {
	if !req.Spread || req.Pinned != "" {
		return ""
	}
	from, most := "", 0
	for _, n := range nodes {
		c := req.Existing[n.Name]
		if c > most || c == most && c > 0 && n.Name < from {
			from, most = n.Name, c
		}
	}
	if most < 2 {
		return ""
	}
	one := req
	one.Count = 1
	res := Place(nodes, one)
	if len(res.Nodes) == 0 || req.Existing[res.Nodes[0]]+1 >= most {
		return ""
	}
	return from
}
