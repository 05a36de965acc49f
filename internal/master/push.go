package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/pkg/sftp"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// ensureImage makes sure the node has the image, with every signature the
// master holds: it asks which blobs the node lacks, has them delivered
// (from a node that has the image, or uploaded by the master; see
// deliver), and has the node assemble and verify the image.
func (a *agent) ensureImage(ctx context.Context, manifest, name string) error {
	if a.knownPresent(manifest) {
		return nil
	}
	lock := a.pushLock(manifest)
	lock.Lock()
	defer lock.Unlock()
	if a.knownPresent(manifest) {
		return nil
	}
	if err := a.ensureImageLocked(ctx, manifest, name); err != nil {
		return err
	}
	a.mu.Lock()
	a.present[manifest] = time.Now()
	a.mu.Unlock()
	return nil
}

// presentFor is how long the master trusts, without asking, that a node
// has an image it has just checked or delivered: the node's other
// replicas of a deploy (often all of them at once) skip the store reads and
// the round trip. An image signed meanwhile reaches the node afterwards.
const presentFor = 10 * time.Second

func (a *agent) knownPresent(manifest string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.present[manifest]
	return ok && time.Since(at) < presentFor
}

func (a *agent) ensureImageLocked(ctx context.Context, manifest, name string) error {
	img, err := a.m.images.Resolve(manifest)
	if err != nil {
		return fmt.Errorf("image %s: %w", manifest, err)
	}
	sigs, err := a.m.images.Signatures(img.Digest)
	if err != nil {
		return err
	}
	d := a.m.dist(img.Digest)
	// Present with every signature the master has: nothing to do. (An
	// image signed after it reached the node gets its signatures now.)
	if have, err := a.api.Image(ctx, manifest); err == nil && len(have.Signers) >= len(img.Signers) {
		d.addSource(a.name)
		return nil
	}
	var all []string
	for _, b := range img.Blobs() {
		all = append(all, string(b))
	}
	missing, err := a.api.MissingBlobs(ctx, all)
	if err != nil {
		return err
	}
	seeded := false
	if len(missing) > 0 {
		if seeded, err = a.deliver(ctx, d, img, missing); err != nil {
			return fmt.Errorf("push %s to %s: %w", name, a.name, err)
		}
		// Whole in its inbox, which its gate serves to peers too: others
		// need not wait for it to unpack.
		d.addSource(a.name)
	}
	req := nodeapi.PullRequest{Name: name, Digest: manifest}
	for _, s := range sigs {
		req.Signatures = append(req.Signatures, string(s))
	}
	_, err = a.api.Pull(ctx, req)
	if seeded {
		d.seedDone()
	}
	if err != nil {
		// What it received did not verify (and is discarded): it serves
		// no one.
		d.removeSource(a.name)
		return err
	}
	d.addSource(a.name)
	a.imagesChanged()
	return nil
}

func (a *agent) pushLock(manifest string) *sync.Mutex {
	a.pushMu.Lock()
	defer a.pushMu.Unlock()
	l, ok := a.pushing[manifest]
	if !ok {
		l = &sync.Mutex{}
		a.pushing[manifest] = l
	}
	return l
}

// deliver puts the missing blobs into the node's inbox: fetched from a
// node that has the image, when one can serve another fetch; otherwise
// uploaded by the master — once per image at a time (the seed), while
// other nodes wait to fetch from it, so the master's uplink carries an
// image about once however many nodes need it. A failed fetch falls back
// to an upload. seeded says this node was the seed: the caller ends the
// seeding (seedDone) once the node has pulled the image.
func (a *agent) deliver(ctx context.Context, d *dist, img image.Image, missing []string) (seeded bool, err error) {
	info := a.m.nodeInfo(a.name)
	failed := map[string]bool{}
	defer func() {
		if err != nil {
			d.removeSource(a.name) // it serves nobody what it does not get
		}
	}()
	for {
		src, seed, wait := d.next(a, info.PeerFetch, failed)
		switch {
		case src != "":
			// Others may follow this node while it receives.
			d.addReceiving(a.name)
			follow := d.isReceiving(src)
			err := a.fetch(ctx, src, img, missing, follow)
			d.release(a.name, src)
			if err == nil {
				return false, nil
			}
			a.log.Warn("fetch from a peer failed; trying another way", "peer", src, "err", err)
			failed[src] = true
			if !follow && ctx.Err() == nil {
				a.m.checkSource(ctx, d, src, string(img.Digest))
			}
		case seed:
			d.addReceiving(a.name)
			err := a.upload(ctx, img, missing)
			if err != nil {
				d.seedDone()
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

// checkSource forgets src as a source of the image if it no longer has it
// (collected there since), so no other node tries it.
func (m *Master) checkSource(ctx context.Context, d *dist, src, manifest string) {
	sa := m.agent(src)
	if sa == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := sa.api.Image(cctx, manifest); errors.Is(err, errs.ErrNotFound) {
		sa.log.Info("no longer holds the image: not a source", "image", short(manifest))
		d.removeSource(src)
	}
}

// fetch has the node fetch the blobs from a peer node.
func (a *agent) fetch(ctx context.Context, src string, img image.Image, missing []string, follow bool) error {
	peer, err := a.m.db.GetNode(ctx, src)
	if err != nil {
		return err
	}
	t := a.m.transfers.start(a.name, string(img.Digest), src, sizeOf(img, missing))
	defer a.m.transfers.end(a.name)
	req := nodeapi.FetchRequest{Peer: nodeapi.Peer{Name: peer.Name, Addr: peer.Addr, User: peer.User, HostKey: peer.HostKey}, Digests: missing, Follow: follow}
	for _, b := range missing {
		info, err := os.Stat(a.m.images.BlobPath(digest.Digest(b)))
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
				if !a.m.peerReady(src) {
					lost.Store(true)
					cancel()
					return
				}
			}
		}
	}()
	var last int64
	start := time.Now()
	err = a.api.Fetch(fctx, req, func(p nodeapi.FetchProgress) {
		t.done.Store(p.Bytes)
		a.m.stats.peerBytes.Add(p.Bytes - last)
		last = p.Bytes
	})
	if err != nil && lost.Load() && ctx.Err() == nil {
		err = fmt.Errorf("fetch from %s: the node went down: %w", src, errs.ErrUnavailable)
	}
	if err == nil {
		a.log.Info("image delivered", "image", short(string(img.Digest)), "from", src, "bytes", last, "took", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// upload sends blobs from the master's store to the node's inbox over the
// gate's SFTP, holding one of the master's push slots. A blob is written
// as NAME.part and renamed when whole, so an upload cut short resumes
// where it stopped.
func (a *agent) upload(ctx context.Context, img image.Image, blobs []string) error {
	select {
	case a.m.pushSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.m.pushSlots }()
	t := a.m.transfers.start(a.name, string(img.Digest), "master", sizeOf(img, blobs))
	defer a.m.transfers.end(a.name)
	client, err := a.conn.SFTP(ctx, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		return err
	}
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	if err := client.MkdirAll("blobs"); err != nil {
		return err
	}
	start := time.Now()
	for _, b := range blobs {
		d := digest.Digest(b)
		w := &counter{n: &t.done, total: &a.m.stats.pushedBytes}
		if err := uploadFile(client, a.m.images.BlobPath(d), path.Join("blobs", image.InboxName(d)), w); err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
	}
	a.log.Info("image delivered", "image", short(string(img.Digest)), "from", "master", "bytes", t.done.Load(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// uploadFile writes src to dst.part, from where an earlier attempt left
// it, then renames it to dst. The node checks the digest when it pulls.
func uploadFile(client *sftp.Client, src, dst string, progress io.Writer) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	part := dst + ".part"
	var offset int64
	if st, err := client.Stat(part); err == nil && st.Size() <= info.Size() {
		offset = st.Size()
	}
	flags := os.O_WRONLY | os.O_CREATE
	if offset == 0 {
		flags |= os.O_TRUNC
	}
	out, err := client.OpenFile(part, flags)
	if err != nil {
		return err
	}
	if _, err := out.Seek(offset, io.SeekStart); err != nil {
		out.Close()
		return err
	}
	if _, err := in.Seek(offset, io.SeekStart); err != nil {
		out.Close()
		return err
	}
	// Sized, so that the SFTP client keeps many writes in flight.
	if _, err := out.ReadFrom(sizedReader{io.TeeReader(in, progress), info.Size() - offset}); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return client.PosixRename(part, dst)
}

// sizedReader tells the SFTP client how much is left, which it needs to
// pipeline writes; a bare TeeReader would make it send one at a time.
type sizedReader struct {
	io.Reader
	size int64
}

func (s sizedReader) Size() int64 { return s.size }

// counter counts bytes written to it into a transfer and a total.
type counter struct{ n, total *atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	c.total.Add(int64(len(p)))
	return len(p), nil
}

func sizeOf(img image.Image, blobs []string) int64 {
	sizes := map[string]int64{string(img.ConfigDigest): 0}
	for _, l := range img.Layers {
		sizes[string(l.Digest)] = l.Size
	}
	var total int64
	for _, b := range blobs {
		total += sizes[b]
	}
	return total
}
