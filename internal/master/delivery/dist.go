package delivery

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/masterapi"
)

// dist is how one image is spreading over the nodes (distState), with
// the lock and the signal of its changes that deliveries wait on.
type dist struct {
	mu      sync.Mutex
	changed chan struct{} // closed when a source or the seeding changes
	distState
}

func (d *Deliverer) dist(manifest digest.Digest) *dist {
	d.mu.Lock()
	defer d.mu.Unlock()
	ds, ok := d.dists[manifest]
	if !ok {
		ds = &dist{changed: make(chan struct{}), distState: distState{sources: map[string]int{}, receiving: map[string]bool{}, upstream: map[string]string{}}}
		d.dists[manifest] = ds
	}
	return ds
}

// isReceiving says whether node is still receiving the image.
func (ds *dist) isReceiving(node string) bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.receiving[node]
}

func (ds *dist) notify() {
	close(ds.changed)
	ds.changed = make(chan struct{})
}

// addSource records that node has the image whole.
func (ds *dist) addSource(node string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if _, ok := ds.sources[node]; !ok || ds.receiving[node] {
		if !ok {
			ds.sources[node] = 0
		}
		delete(ds.receiving, node)
		ds.notify()
	}
}

// addReceiving records that node is receiving the image, and can pass on
// what it has so far.
// (A node taken for a whole source that receives the image again had
// lost it.)
func (ds *dist) addReceiving(node string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if _, ok := ds.sources[node]; !ok {
		ds.sources[node] = 0
	}
	if !ds.receiving[node] {
		ds.receiving[node] = true
		ds.notify()
	}
}

// removeSource forgets a node as a source: what it holds failed to
// verify, was collected, or the node is gone.
func (ds *dist) removeSource(node string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if _, ok := ds.sources[node]; ok {
		delete(ds.sources, node)
		delete(ds.receiving, node)
		ds.notify()
	}
}

// release ends node's fetch from src.
func (ds *dist) release(node, src string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.sources[src] > 0 {
		ds.sources[src]--
	}
	delete(ds.upstream, node)
	ds.notify()
}

func (ds *dist) seedDone() {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.seeding = false
	ds.notify()
}

// next decides how node self gets the image now (see distState.choose):
// from source src (taken: release it after), as the seed or as a fallback
// (the master uploads), or by waiting for wait to close.
func (ds *dist) next(self string, canFetch bool, failed map[string]bool, ready func(node string) bool) (src string, seed bool, wait <-chan struct{}) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	c := ds.choose(self, canFetch, failed, ready)
	switch c.Way {
	case deliverFetch:
		ds.sources[c.From]++
		ds.upstream[self] = c.From
		return c.From, false, nil
	case deliverSeed:
		ds.seeding = true
		return "", true, nil
	case deliverUpload:
		return "", true, nil // fallback: not counted as the seed
	}
	return "", false, ds.changed
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
	slices.SortFunc(out, func(a, b masterapi.Transfer) int { return strings.Compare(a.Node, b.Node) })
	return out
}
