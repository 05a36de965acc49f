package master

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// UploadDir is where blobs uploaded by a remote CLI wait, beside the image
// store (on its filesystem: assembling an image renames them in), as
// sha256-HEX.part while they arrive and sha256-HEX once whole.
const UploadDir = "upload"

// MaxBlobUpload bounds one uploaded blob.
const MaxBlobUpload = 16 << 30

// uploads serialises writers of the same blob.
var uploads sync.Map // digest → *sync.Mutex

func (m *Master) uploadDir() (string, error) {
	dir := filepath.Join(m.cfg.Dir, UploadDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("upload directory: %w", err)
	}
	return dir, nil
}

func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil || d.Algorithm() != digest.SHA256 {
		return "", errs.Invalid("digest", "%q: want sha256:<64 hex digits>", s)
	}
	return d, nil
}

// MissingBlobs returns the blobs neither stored nor wholly uploaded, each
// with what of it has arrived.
func (m *Master) MissingBlobs(ctx context.Context, digests []string) ([]masterapi.BlobState, error) {
	dir, err := m.uploadDir()
	if err != nil {
		return nil, err
	}
	out := []masterapi.BlobState{}
	for _, s := range digests {
		d, err := parseDigest(s)
		if err != nil {
			return nil, err
		}
		if m.images.HasBlob(d) {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, image.InboxName(d))); err == nil {
			continue
		}
		var offset int64
		if fi, err := os.Lstat(filepath.Join(dir, image.InboxName(d)+".part")); err == nil && fi.Mode().IsRegular() {
			offset = fi.Size()
		}
		out = append(out, masterapi.BlobState{Digest: s, Offset: offset})
	}
	return out, nil
}

// WriteBlob appends body to the upload of a blob, which must have offset
// bytes so far; at size bytes the blob is whole (its digest is checked
// when an image is assembled from it). What arrived before the client
// went away is kept, for the next attempt to go on from.
func (m *Master) WriteBlob(ctx context.Context, s string, offset, size int64, body io.Reader) (masterapi.BlobState, error) {
	d, err := parseDigest(s)
	if err != nil {
		return masterapi.BlobState{}, err
	}
	if size > MaxBlobUpload || offset > size {
		return masterapi.BlobState{}, errs.Invalid("size", "blob %s: offset %d, size %d: at most %d bytes", d, offset, size, int64(MaxBlobUpload))
	}
	dir, err := m.uploadDir()
	if err != nil {
		return masterapi.BlobState{}, err
	}
	mu, _ := uploads.LoadOrStore(d, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	whole := filepath.Join(dir, image.InboxName(d))
	if _, err := os.Lstat(whole); err == nil || m.images.HasBlob(d) {
		return masterapi.BlobState{Digest: s, Offset: size}, nil
	}
	part := whole + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return masterapi.BlobState{}, fmt.Errorf("upload blob %s: %w", d, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return masterapi.BlobState{}, fmt.Errorf("upload blob %s: %w", d, err)
	}
	if fi.Size() != offset {
		return masterapi.BlobState{Digest: s, Offset: fi.Size()},
			fmt.Errorf("upload blob %s: the master has %d bytes, the upload starts at %d: %w", d, fi.Size(), offset, errs.ErrConflict)
	}
	n, err := io.Copy(f, io.LimitReader(body, size-offset))
	st := masterapi.BlobState{Digest: s, Offset: offset + n}
	if err != nil {
		return st, fmt.Errorf("upload blob %s: after %d bytes: %w", d, st.Offset, err)
	}
	if st.Offset < size {
		return st, fmt.Errorf("upload blob %s: %d of %d bytes arrived: %w", d, st.Offset, size, errs.ErrInvalid)
	}
	if err := f.Close(); err != nil {
		return st, fmt.Errorf("upload blob %s: %w", d, err)
	}
	if err := os.Rename(part, whole); err != nil {
		return st, fmt.Errorf("upload blob %s: %w", d, err)
	}
	return st, nil
}

// AssembleImage makes an image in the store from its manifest's blobs,
// stored or uploaded; each uploaded one is verified against its digest as
// it moves in.
func (m *Master) AssembleImage(ctx context.Context, req masterapi.AssembleRequest, actor string) ([]nodeapi.Image, error) {
	d, err := parseDigest(req.Manifest)
	if err != nil {
		return nil, err
	}
	dir, err := m.uploadDir()
	if err != nil {
		return nil, err
	}
	img, err := m.images.Pull(ctx, d, req.Name, dir)
	if err != nil {
		return nil, fmt.Errorf("assemble image %s: %w", d, err)
	}
	m.log.Info("image assembled from uploaded blobs", "image", img.Name, "digest", img.Digest, "by", actor)
	return []nodeapi.Image{image.Describe(img)}, nil
}
