package delivery

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/pkg/sftp"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// upload sends blobs from the master's store to the node's inbox over the
// gate's SFTP, holding one of the master's push slots. A blob is written
// as NAME.part and renamed when whole, so an upload cut short resumes
// where it stopped.
func (d *Deliverer) upload(ctx context.Context, t target, img image.Image, blobs []string) error {
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.slots }()
	tr := d.transfers.start(t.name, string(img.Digest), "master", sizeOf(img, blobs))
	defer d.transfers.end(t.name)
	client, err := d.nodes.SFTP(ctx, t.name, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		return err
	}
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	if err := client.MkdirAll(nodeapi.InboxBlobDir); err != nil {
		return err
	}
	start := time.Now()
	for _, b := range blobs {
		dg := digest.Digest(b)
		w := &counter{n: &tr.done, total: &d.pushed}
		if err := uploadFile(client, d.images.BlobPath(dg), nodeapi.InboxBlobPath(b), w); err != nil {
			return fmt.Errorf("blob %s: %w", dg, err)
		}
	}
	t.log.Info("image delivered", "image", short(string(img.Digest)), "from", "master", "bytes", tr.done.Load(), "took", time.Since(start).Round(time.Millisecond))
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
	part := dst + nodeapi.PartSuffix
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
