package sched

import (
	"cmp"
	"math"
)

// fits reports whether one more replica fits in what node p has left.
func (s *state) fits(p int) bool {
	cpu, mem := s.short(p)
	return !cpu && !mem
}

// short reports which resources node p has too little left of for one more
// replica. A resource the request does not need is never short; one it
// needs is always short on a node with no capacity for it.
func (s *state) short(p int) (cpu, mem bool) {
	c, a, r := s.capacity[p], s.alloc[p], s.req
	return r.MilliCPU > 0 && r.MilliCPU > c.MilliCPU-a.MilliCPU,
		r.MemoryBytes > 0 && r.MemoryBytes > c.MemoryBytes-a.MemoryBytes
}

// weigh scores node p for one more replica, higher is better: least
// requested (the mean free share of CPU and memory after placing) plus
// balanced (one minus the gap between the CPU and memory shares used).
func (s *state) weigh(p int) float64 {
	c, a := s.capacity[p], s.alloc[p]
	cpu := usedShare(a.MilliCPU+s.req.MilliCPU, c.MilliCPU)
	mem := usedShare(a.MemoryBytes+s.req.MemoryBytes, c.MemoryBytes)
	least := (2 - cpu - mem) / 2
	balanced := 1 - math.Abs(cpu-mem)
	return least + balanced
}

// usedShare is the share of capacity in use, in [0, 1]; a node with no
// capacity for a resource counts as full of it.
func usedShare(used, capacity int64) float64 {
	if capacity <= 0 {
		return 1
	}
	return min(max(float64(used)/float64(capacity), 0), 1)
}

// compare orders nodes for the next replica, best first: with Spread, fewer
// of the app's replicas on the node, then in its zone; then the higher
// score; then the name (nodes are indexed in name order).
func (s *state) compare(a, b int32) int {
	if s.spread {
		if c := cmp.Compare(s.count[a], s.count[b]); c != 0 {
			return c
		}
		if c := cmp.Compare(s.zoneCount[s.zone[a]], s.zoneCount[s.zone[b]]); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(s.score[b], s.score[a]); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

func (s *state) before(a, b int32) bool { return s.compare(a, b) < 0 }

// down restores the heap order of h after its top changed. Only the top
// ever changes: a replica always goes to the best node of some zone, and
// the keys that change for a whole zone (its replica count) are the same
// for every node in it.
func (s *state) down(h []int32) {
	for i := 0; ; {
		m := 2*i + 1
		if m >= len(h) {
			return
		}
		if r := m + 1; r < len(h) && s.before(h[r], h[m]) {
			m = r
		}
		if !s.before(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
