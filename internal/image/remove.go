package image

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
)

// Remove deletes an image reference. When no name is left for its manifest,
// the blobs and layers no other image shares are deleted too. inUse says
// what uses the manifest ("" if nothing); removing the last reference to
// an image in use is refused, naming the user.
func (s *Store) Remove(ref string, inUse func(digest.Digest) string) error {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	s.mu.Lock()
	idx, err := s.readIndex()
	if err != nil {
		s.mu.Unlock()
		return err
	}
	target, err := lookup(idx, ref)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	// A name removes that name; a digest removes every name for it.
	byDigest := target.Name == "" || NormalizeName(ref) != target.Name
	var kept []indexEntry
	for _, e := range idx {
		if (byDigest && e.Digest == target.Digest) || (!byDigest && e.Name == target.Name) {
			continue
		}
		kept = append(kept, e)
	}
	stillNamed := false
	for _, e := range kept {
		stillNamed = stillNamed || e.Digest == target.Digest
	}
	if !stillNamed && inUse != nil {
		if user := inUse(target.Digest); user != "" {
			s.mu.Unlock()
			return fmt.Errorf("image %q is used by %s: %w", ref, user, errs.ErrConflict)
		}
	}
	err = s.writeIndex(kept)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove image %q: %w", ref, err)
	}
	if !stillNamed {
		s.deleteUnshared(target, kept)
	}
	return nil
}

// deleteUnshared removes the blobs and layers of gone that none of the
// remaining images use.
func (s *Store) deleteUnshared(gone indexEntry, remaining []indexEntry) {
	img, err := s.load(gone)
	if err != nil {
		slog.Warn("image blobs left behind", "digest", gone.Digest, "err", err)
		return
	}
	usedBlobs := map[digest.Digest]bool{}
	usedLayers := map[digest.Digest]bool{}
	for _, e := range remaining {
		other, err := s.load(e)
		if err != nil {
			// Unknown sharing: keep everything rather than guess.
			slog.Warn("image blobs left behind", "digest", gone.Digest, "err", err)
			return
		}
		for _, d := range other.Blobs() {
			usedBlobs[d] = true
		}
		for _, l := range other.Layers {
			usedLayers[l.DiffID] = true
		}
	}
	for _, l := range img.Layers {
		if !usedLayers[l.DiffID] {
			s.removeLayer(l.DiffID)
		}
	}
	for _, d := range img.Blobs() {
		if !usedBlobs[d] {
			os.Remove(s.BlobPath(d))
		}
	}
	s.removeSignatures(gone.Digest)
}
