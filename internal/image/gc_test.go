package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// gcStore imports three images: a and b share a base layer, c stands
// alone. It returns their manifests.
func gcStore(t *testing.T) (s *Store, a, b, c digest.Digest) {
	t.Helper()
	s = openStore(t)
	base := layerTar(t, entry{name: "base", body: "shared"})
	imp := func(name string, layers ...[]byte) digest.Digest {
		arch, d := layout{name: name, layers: layers}.archive(t)
		if _, err := s.Import(context.Background(), bytes.NewReader(arch), ""); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a = imp("a:1", base, layerTar(t, entry{name: "a", body: "a"}))
	b = imp("b:1", base, layerTar(t, entry{name: "b", body: "b"}))
	c = imp("c:1", layerTar(t, entry{name: "c", body: "c"}))
	return s, a, b, c
}

func keepOnly(ds ...digest.Digest) func(digest.Digest) bool {
	return func(d digest.Digest) bool {
		for _, k := range ds {
			if k == d {
				return true
			}
		}
		return false
	}
}

// consistent checks every image left resolves and has its layers.
func consistent(t *testing.T, s *Store) []Image {
	t.Helper()
	imgs, err := s.List()
	if err != nil {
		t.Fatalf("store inconsistent: %v", err)
	}
	for _, img := range imgs {
		for _, d := range img.Blobs() {
			if !s.HasBlob(d) {
				t.Fatalf("image %s lacks blob %s", img.Name, d)
			}
		}
		if _, err := s.LayerPaths(context.Background(), img); err != nil {
			t.Fatalf("image %s: %v", img.Name, err)
		}
	}
	return imgs
}

func TestGC(t *testing.T) {
	requireRoot(t)
	s, a, b, c := gcStore(t)
	ctx := context.Background()
	before := s.DiskUsage()

	dry, err := s.GC(ctx, GCOptions{Keep: keepOnly(a), DryRun: true})
	if err != nil || len(dry.Images) != 2 || dry.Bytes == 0 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if imgs := consistent(t, s); len(imgs) != 3 || s.DiskUsage() != before {
		t.Fatalf("a dry run changed the store: %d images", len(imgs))
	}

	res, err := s.GC(ctx, GCOptions{Keep: keepOnly(a)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 || res.Layers != 2 || res.Blobs == 0 || res.Bytes != dry.Bytes {
		t.Errorf("gc removed %d images, %d layers, %d blobs, %d bytes; the dry run said %d bytes", len(res.Images), res.Layers, res.Blobs, res.Bytes, dry.Bytes)
	}
	imgs := consistent(t, s)
	if len(imgs) != 1 || imgs[0].Digest != a {
		t.Fatalf("left: %+v", imgs)
	}
	for _, d := range []digest.Digest{b, c} {
		if s.HasBlob(d) {
			t.Errorf("manifest %s survived", d)
		}
	}
	if after := s.DiskUsage(); after != before-res.Bytes {
		t.Errorf("disk use %d → %d, but gc says it freed %d", before, after, res.Bytes)
	}
	// Nothing more to do.
	if again, _ := s.GC(ctx, GCOptions{Keep: keepOnly(a)}); len(again.Images)+again.Blobs+again.Layers != 0 {
		t.Errorf("a second gc removed %+v", again)
	}
}

func TestGCGrace(t *testing.T) {
	requireRoot(t)
	s, _, _, _ := gcStore(t)
	// Everything is new: nothing goes, not even unreferenced blobs (a
	// pull under way stores blobs before naming its image).
	orphan := []byte("a blob no image names yet")
	if _, err := s.WriteBlob(digest.FromBytes(orphan), -1, bytes.NewReader(orphan)); err != nil {
		t.Fatal(err)
	}
	res, err := s.GC(context.Background(), GCOptions{Keep: keepOnly(), Grace: time.Hour})
	if err != nil || len(res.Images)+res.Blobs+res.Layers != 0 {
		t.Fatalf("gc within the grace removed %+v %v", res, err)
	}
	if !s.HasBlob(digest.FromBytes(orphan)) {
		t.Error("a fresh blob was collected")
	}
}

// TestGCInterrupted: a GC cut short after rewriting the index (the image
// gone, its files still there) or while deleting a layer leaves a store
// that opens, works, and is cleaned by the next GC.
func TestGCInterrupted(t *testing.T) {
	requireRoot(t)
	s, a, _, c := gcStore(t)
	// As if killed right after the index was written without c.
	s.mu.Lock()
	idx, _ := s.readIndex()
	var kept []indexEntry
	for _, e := range idx {
		if e.Digest != c {
			kept = append(kept, e)
		}
	}
	s.writeIndex(kept)
	s.mu.Unlock()
	// And while a layer was being deleted, moved aside.
	aside := filepath.Join(s.root, "layers", "tmp-gc-cut")
	os.MkdirAll(filepath.Join(aside, "fs", "half"), 0o755)

	s2, err := Open(s.root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(aside); err == nil {
		t.Error("opening the store left a half-deleted layer")
	}
	if imgs := consistent(t, s2); len(imgs) != 2 {
		t.Fatalf("after the cut: %d images", len(imgs))
	}
	if !s2.HasBlob(c) {
		t.Fatal("test setup: c's manifest should still be on disk")
	}
	res, err := s2.GC(context.Background(), GCOptions{Keep: func(digest.Digest) bool { return true }})
	if err != nil || s2.HasBlob(c) || res.Layers != 1 {
		t.Errorf("the next gc did not collect what the cut one left: %+v %v", res, err)
	}
	if imgs := consistent(t, s2); len(imgs) != 2 || (imgs[0].Digest != a && imgs[1].Digest != a) {
		t.Errorf("kept: %+v", imgs)
	}
}

func TestUsedPercent(t *testing.T) {
	for _, tt := range []struct {
		blocks, free, avail uint64
		want                int
	}{
		{100, 100, 95, 0},
		{100, 50, 45, 53},    // df: 50 used, 45 available → 53%
		{1000, 830, 780, 18}, // reserved blocks do not count as used
		{100, 0, 0, 100},
		{0, 0, 0, 0},
	} {
		if got := usedPercent(tt.blocks, tt.free, tt.avail); got != tt.want {
			t.Errorf("usedPercent(%d, %d, %d) = %d, want %d", tt.blocks, tt.free, tt.avail, got, tt.want)
		}
	}
}
