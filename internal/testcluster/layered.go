package testcluster

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LayeredImage writes an OCI image layout tar of the probe (first layer,
// with files of layers[0]) and further uncompressed layers of files, and
// returns its path: images whose layers a benchmark controls, e.g. a large
// base that stays and a small layer that changes.
func LayeredImage(t testing.TB, name string, layers ...map[string][]byte) string {
	t.Helper()
	probe, err := os.ReadFile(ProbeBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) == 0 {
		layers = []map[string][]byte{{}}
	}
	first := map[string][]byte{"probe": probe}
	for k, v := range layers[0] {
		first[k] = v
	}
	layers = append([]map[string][]byte{first}, layers[1:]...)

	blobs := map[digest.Digest][]byte{}
	put := func(b []byte, mt string) ocispec.Descriptor {
		d := digest.FromBytes(b)
		blobs[d] = b
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
	}
	var descs []ocispec.Descriptor
	var diffIDs []digest.Digest
	for _, files := range layers {
		b := tarOf(t, files)
		desc := put(b, ocispec.MediaTypeImageLayer)
		descs = append(descs, desc)
		diffIDs = append(diffIDs, desc.Digest)
	}
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config:   ocispec.ImageConfig{Entrypoint: []string{"/probe"}, User: "65534"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	cb, _ := json.Marshal(cfg)
	man := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: put(cb, ocispec.MediaTypeImageConfig), Layers: descs}
	mb, _ := json.Marshal(man)
	mdesc := put(mb, ocispec.MediaTypeImageManifest)
	mdesc.Annotations = map[string]string{ocispec.AnnotationRefName: name}
	ib, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{mdesc}})

	path := filepath.Join(t.TempDir(), "layered.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	write := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	write("index.json", ib)
	for d, b := range blobs {
		write("blobs/sha256/"+d.Encoded(), b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func tarOf(t testing.TB, files map[string][]byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n])), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg})
		tw.Write(files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
