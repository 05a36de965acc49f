package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moatcloud/moat/internal/errs"
)

func TestImportOCILayout(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	base := layerTar(t, entry{name: "app", body: "v1"}, entry{name: "etc/", typ: tar.TypeDir}, entry{name: "etc/conf", body: "a=1", mode: 0o644})
	top := layerTar(t, entry{name: "etc/.wh.conf"}, entry{name: "app", body: "v2"})
	arch, want := layout{name: "demo:1", layers: [][]byte{base, top}}.archive(t)
	imgs, err := s.Import(context.Background(), bytes.NewReader(arch), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Name != "demo:1" || imgs[0].Digest != want || len(imgs[0].Layers) != 2 {
		t.Fatalf("imported %+v, want demo:1 %s with 2 layers", imgs, want)
	}
	for _, ref := range []string{"demo:1", string(want), want.Encoded()[:12]} {
		img, err := s.Resolve(ref)
		if err != nil || img.Digest != want {
			t.Errorf("Resolve(%q) = %s, %v; want %s", ref, img.Digest, err, want)
		}
	}
	paths, err := s.LayerPaths(context.Background(), imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(paths[1], "app")); err != nil || string(b) != "v2" {
		t.Errorf("top layer app = %q, %v", b, err)
	}
	// The whiteout is an overlay whiteout: a 0:0 character device.
	if fi, err := os.Lstat(filepath.Join(paths[1], "etc", "conf")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("whiteout etc/conf: %v, %v; want a character device", fi, err)
	}
	for _, p := range paths {
		if len(p) > len(s.root)+len("/l/")+12 {
			t.Errorf("layer path %q is long: overlay options would overflow a page", p)
		}
	}
	// A second import of the same archive changes nothing.
	before := storeFiles(t, s)
	if _, err := s.Import(context.Background(), bytes.NewReader(arch), ""); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, storeFiles(t, s)); d != "" {
		t.Errorf("re-import changed the store:\n%s", d)
	}
}

func TestImportDockerSave(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	arch := dockerSave(t, "legacy/app:2", layerTar(t, entry{name: "bin/", typ: tar.TypeDir}, entry{name: "bin/app", body: "hi"}))
	imgs, err := s.Import(context.Background(), bytes.NewReader(gzipped(arch)), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Name != "legacy/app:2" {
		t.Fatalf("imported %+v", imgs)
	}
	img, err := s.Resolve("legacy/app:2")
	if err != nil {
		t.Fatal(err)
	}
	if img.Layers[0].MediaType != ocispec.MediaTypeImageLayer {
		t.Errorf("layer media type %s, want plain tar", img.Layers[0].MediaType)
	}
	paths, _ := s.LayerPaths(context.Background(), img)
	if b, _ := os.ReadFile(filepath.Join(paths[0], "bin", "app")); string(b) != "hi" {
		t.Errorf("bin/app = %q", b)
	}
}

func TestImportName(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	arch, _ := layout{layers: [][]byte{layerTar(t, entry{name: "app", body: "x"})}}.archive(t)
	imgs, err := s.Import(context.Background(), bytes.NewReader(arch), "named")
	if err != nil || imgs[0].Name != "named:latest" {
		t.Fatalf("import --name: %+v, %v", imgs, err)
	}
	if _, err := s.Resolve("named"); err != nil {
		t.Errorf("resolve by name without tag: %v", err)
	}
}

// TestImportRejects: every bad archive is refused whole, with a message
// naming the problem, and leaves the store exactly as it was.
func TestImportRejects(t *testing.T) {
	requireRoot(t)
	good := layerTar(t, entry{name: "app", body: "ok"})
	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		wantMsg string
	}{
		{"blob whose content does not match its digest", func(t *testing.T) []byte {
			a, _ := layout{layers: [][]byte{good}, editBlobs: func(b map[digest.Digest][]byte) {
				for d, blob := range b {
					if bytes.HasPrefix(blob, []byte{0x1f, 0x8b}) {
						b[d] = gzipped(layerTar(t, entry{name: "app", body: "evil"}))
					}
				}
			}}.archive(t)
			return a
		}, "hashes to"},
		{"layer escaping with ..", func(t *testing.T) []byte {
			a, _ := layout{layers: [][]byte{layerTar(t, entry{name: "../../escape", body: "x"})}}.archive(t)
			return a
		}, "escape"},
		{"layer with an absolute path", func(t *testing.T) []byte {
			a, _ := layout{layers: [][]byte{layerTar(t, entry{name: "/etc/evil", body: "x"})}}.archive(t)
			return a
		}, "/etc/evil"},
		{"symlink then write through it", func(t *testing.T) []byte {
			a, _ := layout{layers: [][]byte{layerTar(t, entry{name: "link", typ: tar.TypeSymlink, link: "/tmp"}, entry{name: "link/pwned", body: "x"})}}.archive(t)
			return a
		}, "link/pwned"},
		{"hardlink outside the layer", func(t *testing.T) []byte {
			a, _ := layout{layers: [][]byte{layerTar(t, entry{name: "shadow", typ: tar.TypeLink, link: "../../../etc/shadow"})}}.archive(t)
			return a
		}, "shadow"},
		{"device node", func(t *testing.T) []byte {
			a, _ := layout{layers: [][]byte{layerTar(t, entry{name: "mem", typ: tar.TypeChar})}}.archive(t)
			return a
		}, "device"},
		{"setuid file", func(t *testing.T) []byte {
			a, _ := layout{layers: [][]byte{layerTar(t, entry{name: "su", body: "x", mode: 0o4755})}}.archive(t)
			return a
		}, "setuid"},
		{"manifest referencing a missing blob", func(t *testing.T) []byte {
			l := layout{layers: [][]byte{good}}
			a, _ := l.archive(t)
			tr := tar.NewReader(bytes.NewReader(a))
			omit := map[string]bool{}
			for h, err := tr.Next(); err == nil; h, err = tr.Next() {
				b := make([]byte, 2)
				tr.Read(b)
				if bytes.Equal(b, []byte{0x1f, 0x8b}) {
					omit[h.Name] = true
				}
			}
			l.omit = omit
			a, _ = l.archive(t)
			return a
		}, "lacks"},
		{"config diff ID that lies", func(t *testing.T) []byte {
			a, _ := layout{layers: [][]byte{good}, editConfig: func(c *ocispec.Image) {
				c.RootFS.DiffIDs[0] = digest.FromString("something else")
			}}.archive(t)
			return a
		}, "diff ID"},
		{"other platform only", func(t *testing.T) []byte {
			a, _ := layout{layers: [][]byte{good}, platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}}.archive(t)
			return a
		}, "s390x"},
		{"not a tar", func(t *testing.T) []byte { return []byte("hello, this is not a tar file at all") }, "tar"},
		{"a tar of something else", func(t *testing.T) []byte {
			return tarFiles(t, map[string][]byte{"README": []byte("hi")}, nil)
		}, "no index.json or manifest.json"},
		{"docker save with a layer that lies", func(t *testing.T) []byte {
			a := dockerSave(t, "x:1", good)
			return bytes.Replace(a, []byte("ok"), []byte("ko"), 1)
		}, "diff ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			// Something already in the store must survive the failure.
			ok, _ := layout{name: "keep:1", layers: [][]byte{layerTar(t, entry{name: "keep", body: "me"})}}.archive(t)
			if _, err := s.Import(context.Background(), bytes.NewReader(ok), ""); err != nil {
				t.Fatal(err)
			}
			before := storeFiles(t, s)
			_, err := s.Import(context.Background(), bytes.NewReader(tt.archive(t)), "")
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid (HTTP 400)", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
			if d := cmp.Diff(before, storeFiles(t, s)); d != "" {
				t.Errorf("a failed import changed the store:\n%s", d)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(s.root), "escape")); err == nil {
				t.Error("a layer wrote outside its directory")
			}
		})
	}
}

func TestRemove(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	arch, d := layout{name: "a:1", layers: [][]byte{layerTar(t, entry{name: "app", body: "x"})}}.archive(t)
	ctx := context.Background()
	if _, err := s.Import(ctx, bytes.NewReader(arch), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, bytes.NewReader(arch), "b:1"); err != nil {
		t.Fatal(err)
	}
	inUse := func(m digest.Digest) string {
		if m == d {
			return "container web"
		}
		return ""
	}
	// One of two names may go even while in use: the image stays.
	if err := s.Remove("a:1", inUse); err != nil {
		t.Fatalf("remove one of two names: %v", err)
	}
	if !s.HasBlob(d) {
		t.Fatal("blob removed while another name refers to it")
	}
	if err := s.Remove("b:1", inUse); !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "used by container web") {
		t.Fatalf("remove the last name of an image in use: %v, want conflict", err)
	}
	if err := s.Remove("b:1", nil); err != nil {
		t.Fatal(err)
	}
	if got := storeFiles(t, s); len(got) != 1 || got[0] != "index.json:null" {
		t.Errorf("after removing the last image the store holds %v", got)
	}
	if err := s.Remove("b:1", nil); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("remove twice: %v, want not found", err)
	}
}

func TestOpenCleansPartialWrites(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "ingest", "blob-123"), []byte("partial"), 0o600)
	os.MkdirAll(filepath.Join(root, "layers", "tmp-abc", "fs"), 0o755)
	os.Symlink("../layers/gone/fs", filepath.Join(root, "l", "dangling"))
	if _, err := Open(root, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := storeFiles(t, s); len(got) != 0 {
		t.Errorf("after reopening, leftovers remain: %v", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "ingest")); len(entries) != 0 {
		t.Errorf("ingest holds %d files", len(entries))
	}
}

func TestWriteBlobVerifies(t *testing.T) {
	s := openStore(t)
	content := []byte("blob content")
	d := digest.FromBytes(content)
	if _, err := s.WriteBlob(d, -1, bytes.NewReader([]byte("other content"))); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("mismatching content: %v, want invalid", err)
	}
	if s.HasBlob(d) {
		t.Fatal("a blob that failed verification was kept")
	}
	if _, err := s.WriteBlob(d, 5, bytes.NewReader(content)); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("wrong size: %v, want invalid", err)
	}
	if isNew, err := s.WriteBlob(d, int64(len(content)), bytes.NewReader(content)); err != nil || !isNew {
		t.Fatalf("good blob: new %v, %v", isNew, err)
	}
	for _, bad := range []digest.Digest{"sha512:" + digest.Digest(strings.Repeat("a", 128)), "sha256:../../etc", "sha256:ABC"} {
		if _, err := s.WriteBlob(bad, -1, bytes.NewReader(content)); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("digest %q accepted: %v", bad, err)
		}
	}
	if b, err := s.ReadBlob(d); err != nil || !bytes.Equal(b, content) {
		t.Errorf("read back %q, %v", b, err)
	}
	// A blob corrupted on disk is caught when read.
	os.WriteFile(s.BlobPath(d), []byte("bit rot"), 0o600)
	if _, err := s.ReadBlob(d); err == nil {
		t.Error("corrupted blob read without error")
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"demo": "demo:latest", "demo:1": "demo:1", "reg.io:5000/app": "reg.io:5000/app:latest",
		"reg.io:5000/app:2": "reg.io:5000/app:2", "app@sha256:abc": "app@sha256:abc",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLookupDockerHubLongForm(t *testing.T) {
	d := digest.FromString("m")
	idx := []indexEntry{{Name: "docker.io/library/web:1", Digest: d}, {Name: "ghcr.io/x/web:1", Digest: digest.FromString("n")}}
	for _, ref := range []string{"web:1", "docker.io/library/web:1"} {
		if e, err := lookup(idx, ref); err != nil || e.Digest != d {
			t.Errorf("lookup(%q) = %+v, %v", ref, e, err)
		}
	}
	if _, err := lookup(idx, "x/web:1"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("a short name with a path matched the long form: %v", err)
	}
}
