package build

import (
	"archive/tar"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestBuildLayout(t *testing.T) {
	data, desc := build(t, fixture(t, t.TempDir(), time.Unix(1e9, 0), 0o600, false))
	img := readImage(t, data)

	var blobs []string
	for _, d := range []ocispec.Descriptor{desc, img.manifest.Config, img.manifest.Layers[0]} {
		blobs = append(blobs, "blobs/sha256/"+d.Digest.Encoded())
	}
	slices.Sort(blobs)
	wantOrder := append([]string{"oci-layout", "index.json", "blobs/", "blobs/sha256/"}, blobs...)
	if diff := cmp.Diff(wantOrder, img.order); diff != "" {
		t.Errorf("layout entries (-want +got):\n%s", diff)
	}
	for name, h := range img.outer {
		if !h.ModTime.Equal(created) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("layout %s: mtime %v owner %d:%d (%q:%q), want %v and 0:0 unnamed", name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname, created)
		}
	}
	if got := string(img.files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}

	if img.index.SchemaVersion != 2 || img.index.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("index: schemaVersion %d mediaType %q", img.index.SchemaVersion, img.index.MediaType)
	}
	wantDesc := ocispec.Descriptor{
		MediaType:   ocispec.MediaTypeImageManifest,
		Digest:      desc.Digest,
		Size:        int64(len(img.files["blobs/sha256/"+desc.Digest.Encoded()])),
		Annotations: map[string]string{ocispec.AnnotationRefName: "demo:1"},
		Platform:    &ocispec.Platform{Architecture: "amd64", OS: "linux"},
	}
	if diff := cmp.Diff(wantDesc, img.index.Manifests[0]); diff != "" {
		t.Errorf("index entry (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantDesc, desc); diff != "" {
		t.Errorf("returned descriptor (-want +got):\n%s", diff)
	}

	m := img.manifest
	if m.SchemaVersion != 2 || m.MediaType != ocispec.MediaTypeImageManifest ||
		m.Config.MediaType != ocispec.MediaTypeImageConfig || m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("manifest: %+v", m)
	}

	diffID := img.config.RootFS.DiffIDs[0]
	wantConfig := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		Config: ocispec.ImageConfig{
			User:         "1000:1000",
			ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}},
			Env:          []string{defaultPath, "TZ=UTC"},
			Entrypoint:   []string{"/usr/local/bin/app", "serve"},
			Cmd:          []string{"--verbose"},
			WorkingDir:   "/srv",
			Labels:       map[string]string{"org.opencontainers.image.source": "https://example.com/demo"},
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	}
	if diff := cmp.Diff(wantConfig, img.config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}

	if img.gzHeader.Name != "" || !img.gzHeader.ModTime.IsZero() || img.gzHeader.Comment != "" {
		t.Errorf("gzip header %+v, want no name, comment or time", img.gzHeader)
	}

	if diff := cmp.Diff(wantLayer, summarize(img.layer)); diff != "" {
		t.Errorf("layer (-want +got):\n%s", diff)
	}
	if got := string(img.content["usr/local/bin/app"]); got != "\x7fELF not really\n" {
		t.Errorf("app content = %q", got)
	}
	if got := string(img.content["etc/demo/alias.toml"]); got != "listen = 8080\n" {
		t.Errorf("alias.toml (a symlink given as source) content = %q, want the target's", got)
	}
}

// layerEntry is what a test checks of a layer tar header.
type layerEntry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	Link     string
}

var wantLayer = []layerEntry{
	{"etc/", tar.TypeDir, 0o755, 0, 0, ""},
	{"etc/demo/", tar.TypeDir, 0o755, 0, 0, ""},
	{"etc/demo/alias.toml", tar.TypeReg, 0o640, 1000, 1000, ""},
	{"etc/demo/conf.toml", tar.TypeReg, 0o640, 1000, 1000, ""},
	{"etc/ssl/", tar.TypeDir, 0o755, 0, 0, ""},
	{"etc/ssl/certs/", tar.TypeDir, 0o755, 1000, 1000, ""},
	{"etc/ssl/certs/ca.pem", tar.TypeReg, 0o644, 1000, 1000, ""},
	{"etc/ssl/certs/current", tar.TypeSymlink, 0o777, 1000, 1000, "ca.pem"},
	{"etc/ssl/certs/sub/", tar.TypeDir, 0o750, 1000, 1000, ""},
	{"etc/ssl/certs/sub/x.pem", tar.TypeReg, 0o644, 1000, 1000, ""},
	{"usr/", tar.TypeDir, 0o755, 0, 0, ""},
	{"usr/local/", tar.TypeDir, 0o755, 0, 0, ""},
	{"usr/local/bin/", tar.TypeDir, 0o755, 0, 0, ""},
	{"usr/local/bin/app", tar.TypeReg, 0o755, 1000, 1000, ""},
}

// summarize returns the checked fields of hs, and reports through the zero
// value any header field that must be empty but is not.
func summarize(hs []*tar.Header) []layerEntry {
	out := make([]layerEntry, 0, len(hs))
	for _, h := range hs {
		e := layerEntry{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Link: h.Linkname}
		if !h.ModTime.Equal(created) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() ||
			h.Uname != "" || h.Gname != "" || len(h.PAXRecords) > 0 {
			e.Name += " (unexpected times, owner names or PAX records)"
		}
		out = append(out, e)
	}
	return out
}

// TestBuildLongName checks that PAX records appear only where USTAR cannot
// hold the header.
func TestBuildLongName(t *testing.T) {
	dir := t.TempDir()
	long := "/opt/" + strings.Repeat("n", 120)
	opts := Options{
		Files: []File{
			{Src: mkfile(t, dir, "app", "x", 0o755, created), Dst: "/app"},
			{Src: mkfile(t, dir, "data", "y", 0o644, created), Dst: long},
		},
		Entrypoint: []string{"/app"},
	}
	data, _ := build(t, opts)
	for _, h := range readImage(t, data).layer {
		wantPAX := "/"+h.Name == long
		if gotPAX := len(h.PAXRecords) > 0; gotPAX != wantPAX {
			t.Errorf("%s: PAX records %v, want some: %v", h.Name, h.PAXRecords, wantPAX)
		}
	}
}

// TestBuildRootDir adds a directory as the image root: its contents land at /
// and the root itself gets no entry.
func TestBuildRootDir(t *testing.T) {
	dir := t.TempDir()
	mkfile(t, dir, "bin/app", "x", 0o755, created)
	mkfile(t, dir, "etc/app.conf", "c", 0o644, created)
	opts := Options{Files: []File{{Src: dir, Dst: "/"}}, Entrypoint: []string{"/bin/app"}}
	data, _ := build(t, opts)
	var got []string
	for _, h := range readImage(t, data).layer {
		got = append(got, h.Name)
	}
	want := []string{"bin/", "bin/app", "etc/", "etc/app.conf"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer (-want +got):\n%s", diff)
	}
}
