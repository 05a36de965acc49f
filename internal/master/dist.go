package master

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshx"
)

// perSource bounds the fetches one node that has the image serves at
// once: a tree grows instead of one node's uplink carrying every copy. A
// node still receiving the image serves one: the image flows down a chain
// (master → n1 → n2 → …) at the full speed of every link, each node
// passing on what it receives as it receives it.
const (
	perSource    = 2
	perStreaming = 1
)

// dist is how one image is spreading over the nodes: which have it (the
// sources, and how many fetches each serves now) and whether the master
// is seeding it.
type dist struct {
	mu        sync.Mutex
	changed   chan struct{} // closed when a source or the seeding changes
	sources   map[string]int
	receiving map[string]bool   // sources still receiving the image
	upstream  map[string]string // node → the node it fetches from now
	seeding   bool
}

func (m *Master) dist(manifest digest.Digest) *dist {
	m.distMu.Lock()
	defer m.distMu.Unlock()
	d, ok := m.dists[manifest]
	if !ok {
		d = &dist{changed: make(chan struct{}), sources: map[string]int{}, receiving: map[string]bool{}, upstream: map[string]string{}}
		m.dists[manifest] = d
	}
	return d
}

// forgetDist drops what the master knows of an image's spread (the image
// is gone from its store).
func (m *Master) forgetDist(manifest digest.Digest) {
	m.distMu.Lock()
	delete(m.dists, manifest)
	m.distMu.Unlock()
}

// isReceiving says whether node is still receiving the image.
func (d *dist) isReceiving(node string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.receiving[node]
}

func (d *dist) notify() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// addSource records that node has the image whole.
func (d *dist) addSource(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.sources[node]; !ok || d.receiving[node] {
		if !ok {
			d.sources[node] = 0
		}
		delete(d.receiving, node)
		d.notify()
	}
}

// addReceiving records that node is receiving the image, and can pass on
// what it has so far.
// (A node the master took for a whole source that receives the image
// again had lost it.)
func (d *dist) addReceiving(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.sources[node]; !ok {
		d.sources[node] = 0
	}
	if !d.receiving[node] {
		d.receiving[node] = true
		d.notify()
	}
}

// removeSource forgets a node as a source: what it holds failed to verify.
func (d *dist) removeSource(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.sources[node]; ok {
		delete(d.sources, node)
		delete(d.receiving, node)
		d.notify()
	}
}

// release ends node's fetch from src.
func (d *dist) release(node, src string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sources[src] > 0 {
		d.sources[src]--
	}
	delete(d.upstream, node)
	d.notify()
}

// downstream says whether node gets the image, directly or through
// others, from a: a must not fetch from it, or both would wait on each
// other.
func (d *dist) downstream(node, a string) bool {
	for hops := 0; node != "" && hops <= len(d.upstream); hops++ {
		if node == a {
			return true
		}
		node = d.upstream[node]
	}
	return false
}

func (d *dist) seedDone() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seeding = false
	d.notify()
}

// next decides how agent a gets the image now: from source src (taken:
// release it after), as the seed (the master uploads), or by waiting for
// wait to close. A node that cannot fetch, or whose fetches all failed,
// is uploaded to straight away.
func (d *dist) next(a *agent, canFetch bool, failed map[string]bool) (src string, seed bool, wait <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if canFetch {
		var candidates []string
		for s, busy := range d.sources {
			limit := perSource
			if d.receiving[s] {
				limit = perStreaming
			}
			if s != a.name && busy < limit && !failed[s] && !d.downstream(s, a.name) && a.m.peerReady(s) {
				candidates = append(candidates, s)
			}
		}
		if len(candidates) > 0 {
			// Whole images first (nothing upstream can stall them), then
			// the least busy.
			slices.SortFunc(candidates, func(x, y string) int {
				if d.receiving[x] != d.receiving[y] {
					if d.receiving[x] {
						return 1
					}
					return -1
				}
				return d.sources[x] - d.sources[y]
			})
			d.sources[candidates[0]]++
			d.upstream[a.name] = candidates[0]
			return candidates[0], false, nil
		}
	}
	switch {
	case !canFetch || len(failed) > 0:
		return "", true, nil // fallback: not counted as the seed
	case !d.seeding && !d.anySource(a.m, a.name):
		d.seeding = true
		return "", true, nil
	}
	// A source will free up, or the seed will become one.
	return "", false, d.changed
}

// anySource says whether another node that can serve has the image (busy
// or not).
func (d *dist) anySource(m *Master, self string) bool {
	for s := range d.sources {
		if s != self && m.peerReady(s) {
			return true
		}
	}
	return false
}

// peerReady says whether a node can serve fetches: up, and holding the
// peer key (so it was enrolled with the peer key's gate line).
func (m *Master) peerReady(name string) bool {
	a := m.agent(name)
	if a == nil {
		return false
	}
	state, _, _ := a.conn.State()
	return state == sshx.Up && m.nodeInfo(name).PeerFetch
}

func (m *Master) nodeInfo(name string) nodeapi.NodeInfo {
	nodes, err := m.db.Nodes(m.ctx)
	if err != nil {
		return nodeapi.NodeInfo{}
	}
	for _, n := range nodes {
		if n.Name == name {
			return n.Info
		}
	}
	return nodeapi.NodeInfo{}
}

// transfers are the image deliveries under way, per node, for progress.
type transfers struct {
	mu sync.Mutex
	m  map[string]*transfer
}

type transfer struct {
	image, from string
	total       int64
	done        atomic.Int64
}

func (t *transfers) start(node, image, from string, total int64) *transfer {
	t.mu.Lock()
	defer t.mu.Unlock()
	x := &transfer{image: image, from: from, total: total}
	if t.m == nil {
		t.m = map[string]*transfer{}
	}
	t.m[node] = x
	return x
}

func (t *transfers) end(node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, node)
}

// of lists the transfers of an image, by node.
func (t *transfers) of(image string) []masterapi.Transfer {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []masterapi.Transfer
	for node, x := range t.m {
		if x.image == image {
			out = append(out, masterapi.Transfer{Node: node, From: x.from, Done: x.done.Load(), Total: x.total})
		}
	}
	slices.SortFunc(out, func(a, b masterapi.Transfer) int { return compareStrings(a.Node, b.Node) })
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
