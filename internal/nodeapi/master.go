package nodeapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/moatcloud/moat/internal/wire"
)

// Lease is the master's fencing lease on a node: while it holds, fenced
// containers may run.
type Lease struct {
	TTL Duration `json:"ttl"`
}

// BlobsRequest lists blob digests; the answer lists those the node lacks.
type BlobsRequest struct {
	Digests []string `json:"digests"`
}

// PullRequest asks the node to assemble an image from blobs it has or
// that wait in its upload inbox (blobs/sha256-HEX), checking every digest.
type PullRequest struct {
	Name   string `json:"name,omitempty"`
	Digest string `json:"digest"` // the manifest's
	// Signatures of the image (armored sshsig), kept with it; a node that
	// requires signed images refuses the pull unless one holds.
	Signatures []string `json:"signatures,omitempty"`
}

// Event is one change on a node, streamed by GET /v1/events.
type Event struct {
	Type      string     `json:"type"` // container, removed
	Container *Container `json:"container,omitempty"`
	ID        string     `json:"id,omitempty"` // removed
}

// Renew extends the master's lease on the node.
func (c *Client) Renew(ctx context.Context, ttl time.Duration) error {
	return c.Call(ctx, http.MethodPost, "/v1/lease", Lease{TTL: Duration(ttl)}, nil)
}

// MissingBlobs returns which of the digests the node does not have.
func (c *Client) MissingBlobs(ctx context.Context, digests []string) ([]string, error) {
	var out BlobsRequest
	return out.Digests, c.Call(ctx, http.MethodPost, "/v1/blobs/missing", BlobsRequest{Digests: digests}, &out)
}

// Pull makes an image out of blobs the node has or that were uploaded to
// its inbox.
func (c *Client) Pull(ctx context.Context, req PullRequest) (Image, error) {
	var out Image
	return out, c.Call(ctx, http.MethodPost, "/v1/images/pull", req, &out)
}

// Events streams the node's changes to fn until ctx ends or the stream
// breaks (then the caller lists and subscribes again).
func (c *Client) Events(ctx context.Context, fn func(Event)) error {
	resp, err := c.Request(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return err
	}
	err = wire.Stream(ctx, resp, func(e Event) error { fn(e); return nil })
	if err == nil {
		err = fmt.Errorf("events: the stream ended")
	}
	return err
}

// SignRequest attaches a signature to an image.
type SignRequest struct {
	Signature string `json:"signature"` // armored: -----BEGIN SSH SIGNATURE-----
}

// KeepRequest tells a node which images the master needs kept: every
// app's rollback window. The node adds what its containers use.
type KeepRequest struct {
	Keep []string `json:"keep"` // manifest digests
}

// GCRequest asks a node to collect images now.
type GCRequest struct {
	Keep   []string `json:"keep"` // as KeepRequest; also remembered
	DryRun bool     `json:"dryRun,omitempty"`
	// Grace keeps images that arrived more recently (a pull under way);
	// nil: the node's default, 10 minutes.
	Grace *Duration `json:"grace,omitempty"`
}

// GCResult says what garbage collection removed (or would).
type GCResult struct {
	Images []Image `json:"images"`
	Blobs  int     `json:"blobs"`
	Layers int     `json:"layers"`
	Bytes  int64   `json:"bytes"`
}

// Peer is another node to fetch blobs from, as the master knows it.
type Peer struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"` // host:port of its sshd
	User    string `json:"user"`
	HostKey string `json:"hostKey"` // pinned at its enrolment
}

// FetchRequest asks a node to fetch blobs from a peer into its inbox,
// where a pull takes (and verifies) them.
type FetchRequest struct {
	Peer    Peer     `json:"peer"`
	Digests []string `json:"digests"`
	// Sizes, one per digest, are what the blobs must come to.
	Sizes []int64 `json:"sizes,omitempty"`
	// Follow: the peer is still receiving the blobs; follow them as they
	// arrive (with Sizes) instead of failing on what is not there yet.
	Follow bool `json:"follow,omitempty"`
}

// FetchProgress is one line of a fetch's answer: bytes so far, and the
// end (Done, or Error).
type FetchProgress struct {
	Bytes int64  `json:"bytes"`
	Done  bool   `json:"done,omitempty"`
	Error string `json:"error,omitempty"`
}
