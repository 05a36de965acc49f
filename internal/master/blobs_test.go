package master

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/image/build"
	"github.com/moatcloud/moat/internal/masterapi"
)

// TestBlobUpload: a remote CLI's upload sends what the master lacks; an
// interrupted blob goes on from the offset the master has, a wrong
// offset is refused, and the image is assembled only from blobs that
// match their digests.
func TestBlobUpload(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "master")
	if _, _, err := Init(ctx, dir); err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{Dir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.db.Close()
	ar := archive(t)
	blobs, err := ar.Blobs()
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, b := range blobs {
		digests = append(digests, string(b.Digest))
	}
	missing, err := m.MissingBlobs(ctx, digests)
	if err != nil || len(missing) != len(blobs) || len(blobs) != 3 {
		t.Fatalf("missing of a new image: %+v %v (blobs %+v)", missing, err, blobs)
	}
	read := func(b image.ArchiveBlob) []byte {
		r, _, err := ar.OpenBlob(b.Digest)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(r)
		return data
	}
	big := blobs[1] // the layer: sorted by size, the manifest last
	data := read(big)
	half := int64(len(data) / 2)
	// The connection drops halfway: what arrived stays.
	st, err := m.WriteBlob(ctx, string(big.Digest), 0, big.Size, bytes.NewReader(data[:half]))
	if err == nil || st.Offset != half {
		t.Fatalf("a short upload: %+v %v", st, err)
	}
	if now, _ := m.MissingBlobs(ctx, []string{string(big.Digest)}); len(now) != 1 || now[0].Offset != half {
		t.Fatalf("after a short upload: %+v", now)
	}
	if _, err := m.WriteBlob(ctx, string(big.Digest), 0, big.Size, bytes.NewReader(data)); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("an upload from the wrong offset: %v", err)
	}
	if st, err := m.WriteBlob(ctx, string(big.Digest), half, big.Size, bytes.NewReader(data[half:])); err != nil || st.Offset != big.Size {
		t.Fatalf("the rest: %+v %v", st, err)
	}
	// The config blob's content lies about its digest: refused at assembly.
	cfg := blobs[0]
	if _, err := m.WriteBlob(ctx, string(cfg.Digest), 0, cfg.Size, bytes.NewReader(bytes.Repeat([]byte("x"), int(cfg.Size)))); err != nil {
		t.Fatal(err)
	}
	man := blobs[2]
	if _, err := m.WriteBlob(ctx, string(man.Digest), 0, man.Size, bytes.NewReader(read(man))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AssembleImage(ctx, masterapi.AssembleRequest{Manifest: string(man.Digest), Name: "up:1"}, "test"); err == nil {
		t.Fatal("assembled from a blob whose content lies")
	}
	if _, err := m.images.Resolve("up:1"); err == nil {
		t.Fatal("the refused image is in the store")
	}
	// Sent again, whole and true.
	if now, _ := m.MissingBlobs(ctx, digests); len(now) != 1 || now[0].Digest != string(cfg.Digest) {
		t.Fatalf("after the refusal, missing %+v, want only the config", now)
	}
	if _, err := m.WriteBlob(ctx, string(cfg.Digest), 0, cfg.Size, bytes.NewReader(read(cfg))); err != nil {
		t.Fatal(err)
	}
	imgs, err := m.AssembleImage(ctx, masterapi.AssembleRequest{Manifest: string(man.Digest), Name: "up:1"}, "test")
	if err != nil || len(imgs) != 1 || string(imgs[0].Digest) != string(man.Digest) {
		t.Fatalf("assemble: %+v %v", imgs, err)
	}
	if now, _ := m.MissingBlobs(ctx, digests); len(now) != 0 {
		t.Fatalf("the image is stored, yet missing: %+v", now)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, UploadDir)); len(left) != 0 {
		t.Errorf("uploads left behind: %v", left)
	}
}

// archive builds a one-layer image of 1 MiB of random bytes and opens it.
func archive(t *testing.T) *image.Archive {
	t.Helper()
	src := filepath.Join(t.TempDir(), "data")
	b := make([]byte, 1<<20)
	rand.Read(b)
	os.WriteFile(src, b, 0o755)
	var buf bytes.Buffer
	if _, err := build.Build(context.Background(), &buf, build.Options{Name: "up:1", Entrypoint: []string{"/data"},
		Files: []build.File{{Src: src, Dst: "/data"}}}); err != nil {
		t.Fatal(err)
	}
	ar, err := image.OpenArchive(&buf, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ar.Close() })
	return ar
}
