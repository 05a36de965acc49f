package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/quantity"
)

// importToMaster puts an image archive into the master's store: whole on
// the local socket; to a remote master, blob by blob, sending only what
// it lacks and going on from what an interrupted upload left there.
func (a *app) importToMaster(ctx context.Context, archive io.Reader, name string) ([]nodeapi.Image, error) {
	if m, err := remoteMaster(); err != nil || m == nil {
		return a.masterClient().ImportImage(ctx, archive, name)
	}
	tmp, err := os.MkdirTemp("", "moat-upload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ar, err := image.OpenArchive(archive, tmp)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer ar.Close()
	imgs := ar.Images()
	if name != "" && len(imgs) != 1 {
		return nil, fmt.Errorf("import: --name given but the archive holds %d images: %w", len(imgs), errs.ErrInvalid)
	}
	c := a.masterClient()
	if err := a.uploadBlobs(ctx, c, ar); err != nil {
		return nil, err
	}
	var out []nodeapi.Image
	for _, img := range imgs {
		n := img.Name
		if name != "" {
			n = name
		}
		got, err := c.AssembleImage(ctx, masterapi.AssembleRequest{Manifest: string(img.Digest), Name: n})
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// uploadBlobs sends the blobs of the archive the master lacks, each from
// the offset the master has of it, with progress.
func (a *app) uploadBlobs(ctx context.Context, c *masterapi.Client, ar *image.Archive) error {
	blobs, err := ar.Blobs()
	if err != nil {
		return err
	}
	var digests []string
	var total int64
	for _, b := range blobs {
		digests = append(digests, string(b.Digest))
		total += b.Size
	}
	missing, err := c.MissingBlobs(ctx, digests)
	if err != nil {
		return err
	}
	var send int64
	sizes := map[string]int64{}
	for _, b := range blobs {
		sizes[string(b.Digest)] = b.Size
	}
	for _, m := range missing {
		send += sizes[m.Digest] - m.Offset
	}
	bar := newProgress(a.stderr, send, "upload to the master")
	for _, m := range missing {
		if err := a.uploadBlob(ctx, c, ar, m, sizes[m.Digest], bar); err != nil {
			return err
		}
	}
	bar.Finish()
	if !a.json {
		fmt.Fprintf(a.stderr, "sent %s (%d bytes) in %d blobs; the master had %s of %s already\n",
			quantity.FormatBytes(send), send, len(missing), quantity.FormatBytes(total-send), quantity.FormatBytes(total))
	}
	return nil
}

// uploadBlob sends one blob from st.Offset; when the connection fails it
// asks the master where the upload stands and goes on from there (a few
// times).
func (a *app) uploadBlob(ctx context.Context, c *masterapi.Client, ar *image.Archive, st masterapi.BlobState, size int64, bar io.Writer) error {
	const attempts = 3
	for i := 1; ; i++ {
		r, _, err := ar.OpenBlob(digest.Digest(st.Digest))
		if err != nil {
			return err
		}
		if _, err := r.Seek(st.Offset, io.SeekStart); err != nil {
			return err
		}
		_, err = c.PutBlob(ctx, st.Digest, st.Offset, size, io.TeeReader(io.LimitReader(r, size-st.Offset), bar))
		if err == nil || i == attempts || !(errors.Is(err, errs.ErrUnavailable) || errors.Is(err, errs.ErrConflict)) || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("upload blob %s: %w", st.Digest, err)
			}
			return nil
		}
		now, qerr := c.MissingBlobs(ctx, []string{st.Digest})
		if qerr != nil {
			return fmt.Errorf("upload blob %s: %w", st.Digest, err)
		}
		if len(now) == 0 {
			return nil // it arrived whole after all
		}
		st = now[0]
	}
}
