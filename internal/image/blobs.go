// Package image is a node's (and later the master's) image store: OCI blobs
// by sha256 digest, verified on every write; images imported from OCI
// layouts and docker save archives; and layers unpacked once into snapshot
// directories that containers share through overlayfs.
package image

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
)

// maxJSONBlob bounds manifests, indexes and configs read into memory.
const maxJSONBlob = 4 << 20

// checkDigest refuses digests moat cannot verify or that could form a path.
func checkDigest(d digest.Digest) error {
	// Not d.Algorithm() first: it panics on a digest without a colon.
	alg, _, ok := strings.Cut(string(d), ":")
	if !ok {
		return errs.Invalid("digest", "%q: want sha256:<64 hex digits>", d)
	}
	if digest.Algorithm(alg) != digest.SHA256 {
		return errs.Invalid("digest", "%q: only sha256 digests are supported", d)
	}
	if err := d.Validate(); err != nil {
		return errs.Invalid("digest", "%q: %v", d, err)
	}
	return nil
}

// BlobPath is where the blob with digest d lives (whether or not it exists).
func (s *Store) BlobPath(d digest.Digest) string {
	return filepath.Join(BlobDir(s.root), d.Encoded())
}

// BlobDir is where a store rooted at root keeps its sha256 blobs, each
// named by its hex digest: the gate serves a node's from there.
func BlobDir(root string) string { return filepath.Join(root, "blobs", "sha256") }

// HasBlob reports whether the store holds the blob.
func (s *Store) HasBlob(d digest.Digest) bool {
	if checkDigest(d) != nil {
		return false
	}
	_, err := os.Stat(s.BlobPath(d))
	return err == nil
}

// WriteBlob stores the content of r under digest want, if r's content hashes
// to it and has the given size (size < 0: any size). A mismatch discards
// everything written. It reports whether the blob is new to the store.
func (s *Store) WriteBlob(want digest.Digest, size int64, r io.Reader) (bool, error) {
	if err := checkDigest(want); err != nil {
		return false, err
	}
	if s.HasBlob(want) {
		// Drain nothing: the caller may skip the content entirely.
		return false, nil
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, "ingest"), "blob-")
	if err != nil {
		return false, fmt.Errorf("write blob %s: %w", want, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("write blob %s: %w", want, err)
	}
	got := digest.NewDigest(digest.SHA256, h)
	if got != want {
		return false, fmt.Errorf("blob %s: content hashes to %s: %w", want, got, errs.ErrInvalid)
	}
	if size >= 0 && n != size {
		return false, fmt.Errorf("blob %s: %d bytes, descriptor says %d: %w", want, n, size, errs.ErrInvalid)
	}
	if err := os.Rename(tmp.Name(), s.BlobPath(want)); err != nil {
		return false, fmt.Errorf("write blob %s: %w", want, err)
	}
	return true, nil
}

// ReadBlob returns a small blob's content (manifests, configs), checking its
// digest again: a blob on disk is trusted no more than one on the wire.
func (s *Store) ReadBlob(d digest.Digest) ([]byte, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.BlobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJSONBlob+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if len(b) > maxJSONBlob {
		return nil, fmt.Errorf("blob %s: over %d bytes: %w", d, maxJSONBlob, errs.ErrInvalid)
	}
	if digest.FromBytes(b) != d {
		return nil, fmt.Errorf("blob %s: content on disk does not match its digest", d)
	}
	return b, nil
}

// OpenBlob opens a blob for reading. Large blobs (layers) are verified by
// whoever reads them to the end.
func (s *Store) OpenBlob(d digest.Digest) (*os.File, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.BlobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return f, nil
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
