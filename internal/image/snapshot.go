package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image/layer"
)

// Snapshots: each layer is unpacked once, by diff ID, into layers/<hex>/fs
// and never written again; containers stack them with overlayfs. Overlay's
// mount options must fit in one page, so containers name layers through
// short links l/<id> rather than the 90-character digest paths.

func (s *Store) layerDir(diffID digest.Digest) string {
	return filepath.Join(s.root, "layers", diffID.Encoded())
}

func (s *Store) layerLock(diffID digest.Digest) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.layers[diffID]
	if !ok {
		m = &sync.Mutex{}
		s.layers[diffID] = m
	}
	return m
}

// LayerPaths returns the unpacked layers of img, bottom first, as short
// paths for overlayfs' lowerdir, unpacking any that are missing.
func (s *Store) LayerPaths(ctx context.Context, img Image) ([]string, error) {
	out := make([]string, 0, len(img.Layers))
	for _, l := range img.Layers {
		if _, err := s.ensureLayer(ctx, l); err != nil {
			return nil, err
		}
		id, err := os.ReadFile(filepath.Join(s.layerDir(l.DiffID), "link"))
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.DiffID, err)
		}
		out = append(out, filepath.Join(s.root, "l", strings.TrimSpace(string(id))))
	}
	return out, nil
}

// ensureLayer unpacks the layer unless it already is, checking the blob's
// digest and the uncompressed diff ID as it goes. A layer that fails any
// check is discarded whole.
func (s *Store) ensureLayer(ctx context.Context, l Layer) (created bool, err error) {
	lock := s.layerLock(l.DiffID)
	lock.Lock()
	defer lock.Unlock()
	dir := s.layerDir(l.DiffID)
	if _, err := os.Stat(filepath.Join(dir, "link")); err == nil {
		return false, nil
	}
	tmp := filepath.Join(s.root, "layers", "tmp-"+randomID(8))
	if err := os.MkdirAll(filepath.Join(tmp, "fs"), 0o755); err != nil {
		return false, fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	defer os.RemoveAll(tmp) // no-op after the rename
	if err := s.unpackBlob(ctx, l, filepath.Join(tmp, "fs")); err != nil {
		return false, fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	id := randomID(6)
	if err := os.WriteFile(filepath.Join(tmp, "link"), []byte(id+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	if err := os.Symlink(filepath.Join("..", "layers", l.DiffID.Encoded(), "fs"), filepath.Join(s.root, "l", id)); err != nil {
		return false, fmt.Errorf("layer %s: link: %w", l.DiffID, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Remove(filepath.Join(s.root, "l", id))
		return false, fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	return true, nil
}

func (s *Store) unpackBlob(ctx context.Context, l Layer, dst string) error {
	f, err := s.OpenBlob(l.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	blobHash := sha256.New()
	plain, err := layer.Decompress(bufio.NewReaderSize(io.TeeReader(f, blobHash), 256<<10))
	if err != nil {
		return fmt.Errorf("%v: %w", err, errs.ErrInvalid)
	}
	defer plain.Close()
	// An uncompressed layer's diff ID is its digest: one hash does.
	var diffHash hash.Hash
	tee := io.Reader(plain)
	if l.DiffID != l.Digest {
		diffHash = sha256.New()
		tee = io.TeeReader(plain, diffHash)
	}
	if _, err := layer.Unpack(ctx, tee, dst, s.layerOptions()); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("unpack: %v: %w", err, errs.ErrInvalid)
	}
	// The tar's end-of-archive padding is part of the diff ID.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("decompress: %v: %w", err, errs.ErrInvalid)
	}
	if got := digest.NewDigest(digest.SHA256, blobHash); got != l.Digest {
		return fmt.Errorf("blob content hashes to %s: %w", got, errs.ErrInvalid)
	}
	if diffHash == nil {
		return nil
	}
	if got := digest.NewDigest(digest.SHA256, diffHash); got != l.DiffID {
		return fmt.Errorf("uncompressed content hashes to %s, config says diff ID %s: %w", got, l.DiffID, errs.ErrInvalid)
	}
	return nil
}

// removeLayer deletes an unpacked layer and its link.
func (s *Store) removeLayer(diffID digest.Digest) {
	dir := s.layerDir(diffID)
	if id, err := os.ReadFile(filepath.Join(dir, "link")); err == nil {
		os.Remove(filepath.Join(s.root, "l", strings.TrimSpace(string(id))))
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Leave it: a later removal or clean will retry.
		return
	}
}
