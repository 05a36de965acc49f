package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacking layers sets owners and creates whiteouts (CI runs as root)")
	}
}

// entry is one file in a test layer.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func layerTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, ModTime: time.Unix(0, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o755
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// layout describes an OCI layout archive to assemble; the mutators may
// corrupt it on purpose.
type layout struct {
	name       string
	layers     [][]byte // uncompressed tars; stored gzipped
	platform   *ocispec.Platform
	editConfig func(*ocispec.Image)
	editBlobs  func(map[digest.Digest][]byte)
	omit       map[string]bool // archive files to leave out
}

func (l layout) archive(t testing.TB) (tarball []byte, manifest digest.Digest) {
	t.Helper()
	blobs := map[digest.Digest][]byte{}
	put := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		blobs[d] = b
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}, RootFS: ocispec.RootFS{Type: "layers"}}
	cfg.Config.Entrypoint = []string{"/app"}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for _, lt := range l.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(lt))
		d := put(gzipped(lt))
		d.MediaType = ocispec.MediaTypeImageLayerGzip
		m.Layers = append(m.Layers, d)
	}
	if l.editConfig != nil {
		l.editConfig(&cfg)
	}
	cb, _ := json.Marshal(cfg)
	m.Config = put(cb)
	m.Config.MediaType = ocispec.MediaTypeImageConfig
	mb, _ := json.Marshal(m)
	md := put(mb)
	md.MediaType = ocispec.MediaTypeImageManifest
	md.Platform = l.platform
	if l.name != "" {
		md.Annotations = map[string]string{ocispec.AnnotationRefName: l.name}
	}
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}})
	if l.editBlobs != nil {
		l.editBlobs(blobs)
	}
	files := map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`), "index.json": idx}
	for d, b := range blobs {
		files["blobs/sha256/"+d.Encoded()] = b
	}
	return tarFiles(t, files, l.omit), md.Digest
}

func tarFiles(t testing.TB, files map[string][]byte, omit map[string]bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, b := range files {
		if omit[name] {
			continue
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	return buf.Bytes()
}

// dockerSave assembles a docker save archive holding one image.
func dockerSave(t testing.TB, tag string, layers ...[]byte) []byte {
	t.Helper()
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}, RootFS: ocispec.RootFS{Type: "layers"}}
	files := map[string][]byte{}
	var paths []string
	for i, lt := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(lt))
		p := filepath.Join("layer"+string(rune('a'+i)), "layer.tar")
		files[p] = lt
		paths = append(paths, p)
	}
	cb, _ := json.Marshal(cfg)
	files["config.json"] = cb
	mj, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{tag}, "Layers": paths}})
	files["manifest.json"] = mj
	return tarFiles(t, files, nil)
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "images"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeFiles lists what the store holds on disk (blobs, layers, links,
// index), to check that a failed import changed nothing.
func storeFiles(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"blobs/sha256", "layers", "l"} {
		entries, _ := os.ReadDir(filepath.Join(s.root, dir))
		for _, e := range entries {
			out = append(out, dir+"/"+e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(s.root, "index.json")); err == nil {
		b, _ := os.ReadFile(filepath.Join(s.root, "index.json"))
		out = append(out, "index.json:"+string(b))
	}
	return out
}
