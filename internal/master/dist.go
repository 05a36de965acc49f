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

// dist is how one image is spreading over the nodes (distState), with
// the lock and the signal of its changes that deliveries wait on.
type dist struct {
	mu      sync.Mutex
	changed chan struct{} // closed when a source or the seeding changes
	distState
}

func (m *Master) dist(manifest digest.Digest) *dist {
	m.distMu.Lock()
	defer m.distMu.Unlock()
	d, ok := m.dists[manifest]
	if !ok {
		d = &dist{changed: make(chan struct{}), distState: distState{sources: map[string]int{}, receiving: map[string]bool{}, upstream: map[string]string{}}}
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

func (d *dist) seedDone() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seeding = false
	d.notify()
}

// next decides how agent a gets the image now (see distState.choose):
// from source src (taken: release it after), as the seed or as a fallback
// (the master uploads), or by waiting for wait to close.
func (d *dist) next(a *agent, canFetch bool, failed map[string]bool) (src string, seed bool, wait <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.choose(a.name, canFetch, failed, a.m.peerReady)
	switch c.Way {
	case deliverFetch:
		d.sources[c.From]++
		d.upstream[a.name] = c.From
		return c.From, false, nil
	case deliverSeed:
		d.seeding = true
		return "", true, nil
	case deliverUpload:
		return "", true, nil // fallback: not counted as the seed
	}
	return "", false, d.changed
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
			return nodeInfo(n.Info)
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
