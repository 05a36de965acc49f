package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// image is a built layout read back, following index → manifest → config →
// layer and checking every digest on the way.
type image struct {
	order    []string // entry names of the layout tar, in order
	outer    map[string]*tar.Header
	files    map[string][]byte // layout tar content by name
	index    ocispec.Index
	manifest ocispec.Manifest
	config   ocispec.Image
	layer    []*tar.Header     // layer headers, in order
	content  map[string][]byte // layer file content by name
	gzHeader gzip.Header
}

func readImage(t *testing.T, data []byte) *image {
	t.Helper()
	img := &image{outer: map[string]*tar.Header{}, files: map[string][]byte{}, content: map[string][]byte{}}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read layout: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read %s: %v", hdr.Name, err)
		}
		img.order = append(img.order, hdr.Name)
		img.outer[hdr.Name] = hdr
		img.files[hdr.Name] = b
	}
	unmarshal(t, img.files["index.json"], &img.index)
	if len(img.index.Manifests) != 1 {
		t.Fatalf("index lists %d manifests, want 1", len(img.index.Manifests))
	}
	unmarshal(t, img.blob(t, img.index.Manifests[0]), &img.manifest)
	unmarshal(t, img.blob(t, img.manifest.Config), &img.config)
	if len(img.manifest.Layers) != 1 {
		t.Fatalf("manifest lists %d layers, want 1", len(img.manifest.Layers))
	}
	img.readLayer(t, img.blob(t, img.manifest.Layers[0]))
	return img
}

// blob returns the content d points at after checking its size and digest.
func (img *image) blob(t *testing.T, d ocispec.Descriptor) []byte {
	t.Helper()
	b, ok := img.files["blobs/sha256/"+d.Digest.Encoded()]
	if !ok {
		t.Fatalf("blob %s missing", d.Digest)
	}
	if int64(len(b)) != d.Size || digest.FromBytes(b) != d.Digest {
		t.Fatalf("blob %s: size %d digest %s do not match its descriptor", d.Digest, len(b), digest.FromBytes(b))
	}
	return b
}

func (img *image) readLayer(t *testing.T, gz []byte) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("gunzip layer: %v", err)
	}
	img.gzHeader = zr.Header
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip layer: %v", err)
	}
	if got, want := digest.FromBytes(raw), img.config.RootFS.DiffIDs[0]; got != want {
		t.Errorf("uncompressed layer is %s, diff_id says %s", got, want)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("read layer: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read layer %s: %v", hdr.Name, err)
		}
		img.layer = append(img.layer, hdr)
		img.content[hdr.Name] = b
	}
}

func unmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("unmarshal %T: %v", v, err)
	}
}

// mkfile creates dir/name with content and mode, and sets its mtime.
func mkfile(t *testing.T, dir, name, content string, mode os.FileMode, mtime time.Time) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return p
}
