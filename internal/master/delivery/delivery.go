// Package delivery gets images from the master's store onto nodes. It
// asks a node which blobs it lacks, has them fetched from another node
// that has the image (or is still receiving it) or uploads them into the
// node's inbox over the gate's SFTP, and has the node pull the image. Per
// image it keeps which nodes hold it and who fetches from whom, so an
// image flows from node to node and the master's uplink carries it about
// once; per node, which images it was just found to have.
//
// It is apart from the master so that it can be read and tested alone: it
// reaches nodes only through Nodes, which the master implements, and the
// choice of where a node gets an image from (distState.choose) is pure.
package delivery

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/pkg/sftp"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// Images is the master's image store, as delivery reads it.
type Images interface {
	Resolve(ref string) (image.Image, error)
	Signatures(manifest digest.Digest) ([][]byte, error)
	BlobPath(d digest.Digest) string
}

// Nodes is how delivery reaches a node, by name.
type Nodes interface {
	// API is the node daemon's API; nil for a node the master does not hold.
	API(node string) *nodeapi.Client
	// SFTP opens an SFTP session on the node's inbox, through its gate.
	SFTP(ctx context.Context, node string, opts ...sftp.ClientOption) (*sftp.Client, error)
	// Up says whether the master's connection to the node is up.
	Up(node string) bool
	// PeerFetch says whether the node holds the peer key: whether it can
	// fetch from other nodes, and serve them.
	PeerFetch(node string) bool
	// Peer is how another node reaches this one to fetch from it.
	Peer(ctx context.Context, node string) (nodeapi.Peer, error)
	// ImagesChanged says the node now holds an image it did not.
	ImagesChanged(node string)
}

// Deliverer delivers images to nodes.
type Deliverer struct {
	images    Images
	nodes     Nodes
	log       *slog.Logger
	slots     chan struct{} // the master's uploads at once
	transfers transfers
	pushed    atomic.Int64 // blob bytes the master uploaded to nodes
	peer      atomic.Int64 // blob bytes nodes fetched from each other

	mu    sync.Mutex
	dists map[digest.Digest]*dist
	per   map[string]*node
}

// New returns a Deliverer that uploads to at most maxPushes nodes at once.
func New(images Images, nodes Nodes, maxPushes int, log *slog.Logger) *Deliverer {
	return &Deliverer{
		images: images, nodes: nodes, log: log, slots: make(chan struct{}, maxPushes),
		dists: map[digest.Digest]*dist{}, per: map[string]*node{},
	}
}

// node is what delivery keeps of one node: the image manifests it was
// found to have, and when, and one delivery of an image to it at a time.
type node struct {
	mu      sync.Mutex
	present map[string]time.Time
	pushing map[string]*sync.Mutex
}

// presentFor is how long delivery trusts, without asking, that a node has
// an image it has just checked or delivered: the node's other replicas of
// a deploy (often all of them at once) skip the store reads and the round
// trip. An image signed meanwhile reaches the node afterwards.
const presentFor = 10 * time.Second

func (d *Deliverer) node(name string) *node {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.per[name]
	if !ok {
		n = &node{present: map[string]time.Time{}, pushing: map[string]*sync.Mutex{}}
		d.per[name] = n
	}
	return n
}

func (n *node) knownPresent(manifest string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	at, ok := n.present[manifest]
	return ok && time.Since(at) < presentFor
}

func (n *node) lock(manifest string) *sync.Mutex {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.pushing[manifest]
	if !ok {
		l = &sync.Mutex{}
		n.pushing[manifest] = l
	}
	return l
}

// Ensure makes sure the node has the image whose manifest is manifest
// (named name there), with every signature the master holds: it asks
// which blobs the node lacks, has them delivered (from a node that has
// the image, or uploaded by the master), and has the node assemble and
// verify the image. One delivery of an image to a node at a time.
func (d *Deliverer) Ensure(ctx context.Context, nodeName, manifest, name string) error {
	n := d.node(nodeName)
	if n.knownPresent(manifest) {
		return nil
	}
	lock := n.lock(manifest)
	lock.Lock()
	defer lock.Unlock()
	if n.knownPresent(manifest) {
		return nil
	}
	if err := d.ensure(ctx, nodeName, manifest, name); err != nil {
		return err
	}
	n.mu.Lock()
	n.present[manifest] = time.Now()
	n.mu.Unlock()
	return nil
}

// Forget drops what delivery knows of a node: removed, or registered
// again (perhaps another machine under the same name).
func (d *Deliverer) Forget(nodeName string) {
	d.mu.Lock()
	delete(d.per, nodeName)
	dists := make([]*dist, 0, len(d.dists))
	for _, x := range d.dists {
		dists = append(dists, x)
	}
	d.mu.Unlock()
	for _, x := range dists {
		x.removeSource(nodeName)
	}
}

// ForgetImage drops what delivery knows of an image's spread: the image
// is gone from the master's store.
func (d *Deliverer) ForgetImage(manifest string) {
	d.mu.Lock()
	delete(d.dists, digest.Digest(manifest))
	d.mu.Unlock()
}

// Collected records that the node no longer has the image (its GC
// collected it): it is no source of it, and is asked again next time.
func (d *Deliverer) Collected(nodeName, manifest string) {
	d.dist(digest.Digest(manifest)).removeSource(nodeName)
	n := d.node(nodeName)
	n.mu.Lock()
	delete(n.present, manifest)
	n.mu.Unlock()
}

// Transfers lists the deliveries of an image under way, by node.
func (d *Deliverer) Transfers(manifest string) []masterapi.Transfer {
	return d.transfers.of(manifest)
}

// Stats counts the image bytes delivered so far.
func (d *Deliverer) Stats() masterapi.Stats {
	return masterapi.Stats{PushedBytes: d.pushed.Load(), PeerBytes: d.peer.Load()}
}

func short(digest string) string {
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
