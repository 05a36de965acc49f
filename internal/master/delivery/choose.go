package delivery

import "slices"

// The decision of how a node gets an image: from which node that has it,
// or uploaded by the master. Pure; dist.go applies it under its lock.

// perSource bounds the fetches one node that has the image serves at
// once: a tree grows instead of one node's uplink carrying every copy. A
// node still receiving the image serves one: the image flows down a chain
// (master → n1 → n2 → …) at the full speed of every link, each node
// passing on what it receives as it receives it.
const (
	perSource    = 2
	perStreaming = 1
)

// distState is how one image is spreading over the nodes: which have it
// (the sources, and how many fetches each serves now), which of them are
// still receiving it, who fetches from whom, and whether the master is
// seeding it.
type distState struct {
	sources   map[string]int
	receiving map[string]bool   // sources still receiving the image
	upstream  map[string]string // node → the node it fetches from now
	seeding   bool
}

// deliveryWay is how a node gets an image now.
type deliveryWay string

// Ways.
const (
	deliverFetch  deliveryWay = "fetch"  // from a source node, which serves one more fetch
	deliverUpload deliveryWay = "upload" // the master uploads, not as the seed: the node cannot fetch, or its fetches failed
	deliverSeed   deliveryWay = "seed"   // the master uploads, as the image's one seed
	deliverWait   deliveryWay = "wait"   // a source will free up, or the seed will become one
)

// delivery is the decision for one node.
type delivery struct {
	Way  deliveryWay
	From string // deliverFetch: the source
}

// choose decides how node self gets the image. A node that can fetch
// takes a source that can serve another fetch (below perSource, or
// perStreaming while it still receives), is not self, did not fail self
// before, is not downstream of self (both would wait on each other), and
// is ready (up, with the peer key): whole images first (nothing upstream
// can stall them), then the least busy. Failing that: a node that cannot
// fetch, or whose fetches failed, is uploaded to at once; the first to
// ask while no other ready node holds the image becomes the seed; the
// rest wait. ready is asked last, only of sources that qualify otherwise.
func (s distState) choose(self string, canFetch bool, failed map[string]bool, ready func(node string) bool) delivery {
	if canFetch {
		var candidates []string
		for src, busy := range s.sources {
			limit := perSource
			if s.receiving[src] {
				limit = perStreaming
			}
			if src != self && busy < limit && !failed[src] && !s.downstream(src, self) && ready(src) {
				candidates = append(candidates, src)
			}
		}
		if len(candidates) > 0 {
			slices.SortFunc(candidates, func(x, y string) int {
				if s.receiving[x] != s.receiving[y] {
					if s.receiving[x] {
						return 1
					}
					return -1
				}
				return s.sources[x] - s.sources[y]
			})
			return delivery{Way: deliverFetch, From: candidates[0]}
		}
	}
	switch {
	case !canFetch || len(failed) > 0:
		return delivery{Way: deliverUpload}
	case !s.seeding && !s.anySource(self, ready):
		return delivery{Way: deliverSeed}
	}
	return delivery{Way: deliverWait}
}

// downstream says whether node gets the image, directly or through
// others, from a: a must not fetch from it, or both would wait on each
// other.
func (s distState) downstream(node, a string) bool {
	for hops := 0; node != "" && hops <= len(s.upstream); hops++ {
		if node == a {
			return true
		}
		node = s.upstream[node]
	}
	return false
}

// anySource says whether another node that can serve has the image (busy
// or not).
func (s distState) anySource(self string, ready func(node string) bool) bool {
	for src := range s.sources {
		if src != self && ready(src) {
			return true
		}
	}
	return false
}
