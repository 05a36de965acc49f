package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// target is the node an image is delivered to.
type target struct {
	name string
	api  *nodeapi.Client
	log  *slog.Logger
}

// ensure is Ensure, under the node's lock of the image.
func (d *Deliverer) ensure(ctx context.Context, nodeName, manifest, name string) error {
	img, err := d.images.Resolve(manifest)
	if err != nil {
		return fmt.Errorf("image %s: %w", manifest, err)
	}
	sigs, err := d.images.Signatures(img.Digest)
	if err != nil {
		return err
	}
	api := d.nodes.API(nodeName)
	if api == nil {
		return fmt.Errorf("node %s: %w", nodeName, errs.ErrNotFound)
	}
	t := target{name: nodeName, api: api, log: d.log.With("node", nodeName)}
	ds := d.dist(img.Digest)
	// Present with every signature the master has: nothing to do. (An
	// image signed after it reached the node gets its signatures now.)
	if have, err := t.api.Image(ctx, manifest); err == nil && len(have.Signers) >= len(img.Signers) {
		ds.addSource(t.name)
		return nil
	}
	var all []string
	for _, b := range img.Blobs() {
		all = append(all, string(b))
	}
	missing, err := t.api.MissingBlobs(ctx, all)
	if err != nil {
		return err
	}
	seeded := false
	if len(missing) > 0 {
		if seeded, err = d.deliver(ctx, t, ds, img, missing); err != nil {
			return fmt.Errorf("push %s to %s: %w", name, t.name, err)
		}
		// Whole in its inbox, which its gate serves to peers too: others
		// need not wait for it to unpack.
		ds.addSource(t.name)
	}
	req := nodeapi.PullRequest{Name: name, Digest: manifest}
	for _, s := range sigs {
		req.Signatures = append(req.Signatures, string(s))
	}
	_, err = t.api.Pull(ctx, req)
	if seeded {
		ds.seedDone()
	}
	if err != nil {
		// What it received did not verify (and is discarded): it serves
		// no one.
		ds.removeSource(t.name)
		return err
	}
	ds.addSource(t.name)
	d.nodes.ImagesChanged(t.name)
	return nil
}

// deliver puts the missing blobs into the node's inbox: fetched from a
// node that has the image, when one can serve another fetch; otherwise
// uploaded by the master — once per image at a time (the seed), while
// other nodes wait to fetch from it, so the master's uplink carries an
// image about once however many nodes need it. A failed fetch falls back
// to an upload. seeded says this node was the seed: the caller ends the
// seeding (seedDone) once the node has pulled the image.
func (d *Deliverer) deliver(ctx context.Context, t target, ds *dist, img image.Image, missing []string) (seeded bool, err error) {
	canFetch := d.nodes.PeerFetch(t.name)
	failed := map[string]bool{}
	defer func() {
		if err != nil {
			ds.removeSource(t.name) // it serves nobody what it does not get
		}
	}()
	for {
		src, seed, wait := ds.next(t.name, canFetch, failed, d.peerReady)
		switch {
		case src != "":
			// Others may follow this node while it receives.
			ds.addReceiving(t.name)
			follow := ds.isReceiving(src)
			err := d.fetch(ctx, t, src, img, missing, follow)
			ds.release(t.name, src)
			if err == nil {
				return false, nil
			}
			t.log.Warn("fetch from a peer failed; trying another way", "peer", src, "err", err)
			failed[src] = true
			if !follow && ctx.Err() == nil {
				d.checkSource(ctx, ds, src, string(img.Digest))
			}
		case seed:
			ds.addReceiving(t.name)
			err := d.upload(ctx, t, img, missing)
			if err != nil {
				ds.seedDone()
			}
			return err == nil, err
		default:
			select {
			case <-wait:
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
	}
}

// peerReady says whether a node can serve fetches: up, and holding the
// peer key (so it was enrolled with the peer key's gate line).
func (d *Deliverer) peerReady(name string) bool {
	return d.nodes.Up(name) && d.nodes.PeerFetch(name)
}

// checkSource forgets src as a source of the image if it no longer has it
// (collected there since), so no other node tries it.
func (d *Deliverer) checkSource(ctx context.Context, ds *dist, src, manifest string) {
	api := d.nodes.API(src)
	if api == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := api.Image(cctx, manifest); errors.Is(err, errs.ErrNotFound) {
		d.log.With("node", src).Info("no longer holds the image: not a source", "image", short(manifest))
		ds.removeSource(src)
	}
}

// fetch has the node fetch the blobs from a peer node.
func (d *Deliverer) fetch(ctx context.Context, t target, src string, img image.Image, missing []string, follow bool) error {
	peer, err := d.nodes.Peer(ctx, src)
	if err != nil {
		return err
	}
	tr := d.transfers.start(t.name, string(img.Digest), src, sizeOf(img, missing))
	defer d.transfers.end(t.name)
	req := nodeapi.FetchRequest{Peer: peer, Digests: missing, Follow: follow}
	for _, b := range missing {
		info, err := os.Stat(d.images.BlobPath(digest.Digest(b)))
		if err != nil {
			return fmt.Errorf("blob %s: %w", b, err)
		}
		req.Sizes = append(req.Sizes, info.Size())
	}
	// The source going down ends the fetch at once: the master knows it
	// within its keepalives, sooner than the node would.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lost atomic.Bool
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-fctx.Done():
				return
			case <-tick.C:
				if !d.peerReady(src) {
					lost.Store(true)
					cancel()
					return
				}
			}
		}
	}()
	var last int64
	start := time.Now()
	err = t.api.Fetch(fctx, req, func(p nodeapi.FetchProgress) {
		tr.done.Store(p.Bytes)
		d.peer.Add(p.Bytes - last)
		last = p.Bytes
	})
	if err != nil && lost.Load() && ctx.Err() == nil {
		err = fmt.Errorf("fetch from %s: the node went down: %w", src, errs.ErrUnavailable)
	}
	if err == nil {
		t.log.Info("image delivered", "image", short(string(img.Digest)), "from", src, "bytes", last, "took", time.Since(start).Round(time.Millisecond))
	}
	return err
}
