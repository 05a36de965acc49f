package delivery

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/masterapi"
)

const (
	imgA = "sha256:aaaa"
	imgB = "sha256:bbbb"
)

// sources lists the nodes delivery takes for sources of an image.
func sources(d *Deliverer, manifest string) map[string]int {
	ds := d.dist(digest.Digest(manifest))
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.sources
}

func seen(d *Deliverer, node string, manifests ...string) {
	n := d.node(node)
	for _, m := range manifests {
		d.dist(digest.Digest(m)).addSource(node)
		n.present[m] = time.Now()
	}
}

// TestForget: a node removed (or registered again) is no source of any
// image, and nothing is taken as present there.
func TestForget(t *testing.T) {
	d := New(nil, nil, 1, slog.Default())
	seen(d, "n1", imgA, imgB)
	seen(d, "n2", imgA)
	d.Forget("n1")
	if diff := cmp.Diff(map[string]int{"n2": 0}, sources(d, imgA)); diff != "" {
		t.Errorf("sources of A (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{}, sources(d, imgB)); diff != "" {
		t.Errorf("sources of B (-want +got):\n%s", diff)
	}
	if d.node("n1").knownPresent(imgA) || !d.node("n2").knownPresent(imgA) {
		t.Error("Forget(n1) should drop what n1 had, and only that")
	}
}

// TestCollected: an image a node's GC collected is asked about again,
// and that node serves it to nobody.
func TestCollected(t *testing.T) {
	d := New(nil, nil, 1, slog.Default())
	seen(d, "n1", imgA, imgB)
	d.Collected("n1", imgA)
	if len(sources(d, imgA)) != 0 || d.node("n1").knownPresent(imgA) {
		t.Error("n1 still taken for a holder of A")
	}
	if len(sources(d, imgB)) != 1 || !d.node("n1").knownPresent(imgB) {
		t.Error("n1 no longer taken for a holder of B")
	}
}

func TestTransfers(t *testing.T) {
	d := New(nil, nil, 1, slog.Default())
	d.transfers.start("n2", imgA, "n1", 100).done.Store(40)
	d.transfers.start("n1", imgA, "master", 100)
	d.transfers.start("n3", imgB, "master", 7)
	want := []masterapi.Transfer{{Node: "n1", From: "master", Total: 100}, {Node: "n2", From: "n1", Done: 40, Total: 100}}
	if diff := cmp.Diff(want, d.Transfers(imgA)); diff != "" {
		t.Errorf("transfers of A (-want +got):\n%s", diff)
	}
	d.transfers.end("n1")
	if got := d.Transfers(imgA); len(got) != 1 || got[0].Node != "n2" {
		t.Errorf("after n1's ended: %+v", got)
	}
}
