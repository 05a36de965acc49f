package image

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// GCOptions say what garbage collection keeps.
type GCOptions struct {
	// Keep says whether an image must stay (in use, in a rollback window).
	Keep func(digest.Digest) bool
	// Grace keeps images, blobs and layers younger than it: a pull or
	// import under way has stored blobs that no image names yet.
	Grace  time.Duration
	DryRun bool
}

// GCResult says what was (or, in a dry run, would be) removed.
type GCResult struct {
	Images []Image `json:"images"`
	Blobs  int     `json:"blobs"`
	Layers int     `json:"layers"`
	Bytes  int64   `json:"bytes"`
}

// GC removes the images Keep does not keep, then every blob, unpacked
// layer and signature no remaining image uses. The index is rewritten
// first, atomically, and only then is anything deleted: a GC cut short
// leaves unreferenced files, which the next one collects, and never an
// image missing a blob.
func (s *Store) GC(ctx context.Context, opts GCOptions) (GCResult, error) {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	var res GCResult
	now := time.Now()
	s.mu.Lock()
	idx, err := s.readIndex()
	s.mu.Unlock()
	if err != nil {
		return res, err
	}
	var kept []indexEntry
	gone := map[digest.Digest]bool{}
	for _, e := range idx {
		if opts.Keep(e.Digest) || now.Sub(e.Imported) < opts.Grace {
			kept = append(kept, e)
		} else {
			gone[e.Digest] = true
		}
	}
	// What the remaining images use; one that cannot be read stops the
	// collection rather than have its blobs taken for garbage.
	usedBlobs, usedLayers := map[string]bool{}, map[string]bool{}
	for _, e := range kept {
		delete(gone, e.Digest) // another name keeps it
		img, err := s.load(e)
		if err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
		for _, d := range img.Blobs() {
			usedBlobs[d.Encoded()] = true
		}
		for _, l := range img.Layers {
			usedLayers[l.DiffID.Encoded()] = true
		}
	}
	for _, e := range idx {
		if gone[e.Digest] {
			if img, err := s.load(e); err == nil {
				res.Images = append(res.Images, img)
			} else {
				res.Images = append(res.Images, Image{Name: e.Name, Digest: e.Digest})
			}
		}
	}
	if !opts.DryRun && len(kept) != len(idx) {
		s.mu.Lock()
		err := s.writeIndex(kept)
		s.mu.Unlock()
		if err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	s.sweepBlobs(&res, usedBlobs, now, opts)
	s.sweepLayers(&res, usedLayers, now, opts)
	if !opts.DryRun {
		s.sweepSignatures(usedBlobs)
	}
	return res, nil
}

func (s *Store) sweepBlobs(res *GCResult, used map[string]bool, now time.Time, opts GCOptions) {
	entries, _ := os.ReadDir(BlobDir(s.root))
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || used[e.Name()] || now.Sub(info.ModTime()) < opts.Grace {
			continue
		}
		if !opts.DryRun && os.Remove(filepath.Join(BlobDir(s.root), e.Name())) != nil {
			continue
		}
		res.Blobs++
		res.Bytes += info.Size()
	}
}

// sweepLayers moves each unused layer aside (tmp-*, which opening the
// store clears) before deleting it, so none is ever half there.
func (s *Store) sweepLayers(res *GCResult, used map[string]bool, now time.Time, opts GCOptions) {
	entries, _ := os.ReadDir(filepath.Join(s.root, "layers"))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "tmp-") || used[name] || !e.IsDir() {
			continue
		}
		dir := filepath.Join(s.root, "layers", name)
		info, err := os.Stat(dir)
		if err != nil || now.Sub(info.ModTime()) < opts.Grace {
			continue
		}
		size := dirSize(dir)
		if !opts.DryRun {
			if id, err := os.ReadFile(filepath.Join(dir, "link")); err == nil {
				os.Remove(filepath.Join(s.root, "l", strings.TrimSpace(string(id))))
			}
			aside := filepath.Join(s.root, "layers", "tmp-gc-"+randomID(6))
			if os.Rename(dir, aside) != nil {
				continue
			}
			os.RemoveAll(aside)
		}
		res.Layers++
		res.Bytes += size
	}
}

// sweepSignatures drops the signatures of manifests no longer stored.
func (s *Store) sweepSignatures(usedBlobs map[string]bool) {
	entries, _ := os.ReadDir(filepath.Join(s.root, "signatures"))
	for _, e := range entries {
		if !usedBlobs[e.Name()] {
			os.RemoveAll(filepath.Join(s.root, "signatures", e.Name()))
		}
	}
}

func dirSize(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}
