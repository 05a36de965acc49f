package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
)

// MaxImportBytes bounds the uncompressed size of one import archive.
const MaxImportBytes = 64 << 30

// pending is an image found in an archive, validated but not yet stored.
type pending struct {
	name     string
	manifest digest.Digest
	img      Image
	// sources gives, for every blob the image needs, where in the archive
	// it is (or nil: generated, in generated).
	sources   map[digest.Digest]string
	generated map[digest.Digest][]byte
}

// Import adds every image in r, an OCI image layout or a docker save archive
// as a tar (optionally gzip- or zstd-compressed). name, when not empty,
// names the image (the archive must hold exactly one). Either every image is
// imported, its blobs verified and its layers unpacked, or nothing changes.
func (s *Store) Import(ctx context.Context, r io.Reader, name string) ([]Image, error) {
	ar, err := OpenArchive(r, filepath.Join(s.root, "ingest"))
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer ar.Close()
	a, found := ar.a, ar.found
	if name != "" {
		if len(found) != 1 {
			return nil, fmt.Errorf("import: --name given but the archive holds %d images: %w", len(found), errs.ErrInvalid)
		}
		found[0].name = NormalizeName(name)
	}
	for _, p := range found {
		if err := s.checkSources(a, p); err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
	}
	return s.commit(ctx, a, found)
}

// checkSources makes sure every blob is in the archive or already stored,
// before anything is written.
func (s *Store) checkSources(a *archive, p pending) error {
	for d, src := range p.sources {
		if p.generated[d] != nil || s.HasBlob(d) {
			continue
		}
		if !a.has(src) {
			return fmt.Errorf("image %s needs blob %s, which the archive lacks: %w", p.manifest, d, errs.ErrInvalid)
		}
	}
	return nil
}

// commit writes blobs and unpacks layers; on any failure it removes what
// this import added, so a bad archive leaves the store as it was.
func (s *Store) commit(ctx context.Context, a *archive, found []pending) (imgs []Image, err error) {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	var newBlobs []digest.Digest
	var newLayers []digest.Digest
	defer func() {
		if err == nil {
			return
		}
		for _, l := range newLayers {
			s.removeLayer(l)
		}
		for _, d := range newBlobs {
			os.Remove(s.BlobPath(d))
		}
	}()
	for _, p := range found {
		for d, src := range p.sources {
			var r io.Reader
			size := int64(-1)
			if b := p.generated[d]; b != nil {
				r = bytesReader(b)
			} else if !s.HasBlob(d) {
				if r, size, err = a.open(src); err != nil {
					return nil, fmt.Errorf("import: %w", err)
				}
			} else {
				continue
			}
			isNew, err := s.WriteBlob(d, size, r)
			if err != nil {
				return nil, fmt.Errorf("import: %w", err)
			}
			if isNew {
				newBlobs = append(newBlobs, d)
			}
		}
		for _, l := range p.img.Layers {
			created, err := s.ensureLayer(ctx, l)
			if err != nil {
				return nil, fmt.Errorf("import %s: %w", displayName(p), err)
			}
			if created {
				newLayers = append(newLayers, l.DiffID)
			}
		}
	}
	if err := s.addToIndex(found); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	now := time.Now().UTC()
	for _, p := range found {
		img := p.img
		img.Name, img.Digest, img.Imported = p.name, p.manifest, now
		imgs = append(imgs, img)
	}
	return imgs, nil
}

func displayName(p pending) string {
	if p.name != "" {
		return p.name
	}
	return string(p.manifest)
}

func (s *Store) addToIndex(found []pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	for _, p := range found {
		if slices.ContainsFunc(idx, func(e indexEntry) bool { return e.Name == p.name && e.Digest == p.manifest }) {
			continue // imported before: keep its first import time
		}
		var kept []indexEntry
		for _, e := range idx {
			switch {
			case e.Digest == p.manifest && (e.Name == "" || e.Name == p.name):
				// An unnamed entry for the same digest is replaced.
			case p.name != "" && e.Name == p.name:
				// The name moves to the new image. The old one stays, by
				// digest only, for what still uses it (a container, a
				// rollback); garbage collection decides when it goes.
				if !slices.ContainsFunc(idx, func(o indexEntry) bool { return o.Digest == e.Digest && o.Name != e.Name }) {
					kept = append(kept, indexEntry{Digest: e.Digest, Imported: e.Imported})
				}
			default:
				kept = append(kept, e)
			}
		}
		idx = append(kept, indexEntry{Name: p.name, Digest: p.manifest, Imported: now})
	}
	return s.writeIndex(idx)
}

// readJSON reads a small JSON file from the archive, checking its digest
// when one is expected.
func readJSON(a *archive, name string, want digest.Digest, v any) ([]byte, error) {
	b, err := a.readSmall(name)
	if err != nil {
		return nil, err
	}
	if want != "" && digest.FromBytes(b) != want {
		return nil, fmt.Errorf("blob %s: content hashes to %s: %w", want, digest.FromBytes(b), errs.ErrInvalid)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", name, err, errs.ErrInvalid)
	}
	return b, nil
}

func blobName(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }

func isNotFound(err error) bool { return errors.Is(err, errs.ErrNotFound) }
