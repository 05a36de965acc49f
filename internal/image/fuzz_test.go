package image

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

// FuzzOpenArchive: whatever an archive holds (OCI layout, docker save,
// anything else), opening it finds images or fails with an invalid-input
// error; it never panics and leaves nothing in its spool directory.
func FuzzOpenArchive(f *testing.F) {
	oci, _ := layout{name: "demo:1", layers: [][]byte{layerTar(f, entry{name: "app", body: "v1"})}}.archive(f)
	f.Add(oci)
	f.Add(dockerSave(f, "demo:1", layerTar(f, entry{name: "app", body: "v1"})))
	f.Add(tarFiles(f, map[string][]byte{"index.json": []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2}]}`)}, nil))
	f.Add(tarFiles(f, map[string][]byte{"manifest.json": []byte(`[{"Config":"../../etc/passwd","RepoTags":["x:1"],"Layers":["/etc/shadow"]}]`)}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		ar, err := OpenArchive(bytes.NewReader(b), dir)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("not an invalid-input error: %v", err)
			}
		} else {
			for _, img := range ar.Images() {
				for _, l := range img.Layers {
					if rc, err := ar.OpenLayer(l); err == nil {
						rc.Close()
					}
				}
			}
			ar.Close()
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("the spool directory keeps %d files", len(left))
		}
	})
}

// FuzzManifest: a manifest and config from an untrusted image either
// resolve to layers with valid digests or are refused as invalid.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":3}]}`),
		[]byte(`{"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"]}}`))
	// A digest without a colon once panicked in go-digest.
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"nocolon"},"layers":[]}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, manifest, config []byte) {
		m, err := parseManifest(manifest)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("manifest: not an invalid-input error: %v", err)
			}
			return
		}
		img, err := resolveImage(m, config)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("config: not an invalid-input error: %v", err)
			}
			return
		}
		if checkDigest(img.ConfigDigest) != nil {
			t.Fatalf("resolved image names an invalid config digest %q", img.ConfigDigest)
		}
		for _, l := range img.Layers {
			if checkDigest(l.Digest) != nil || checkDigest(l.DiffID) != nil || l.Size < 0 {
				t.Fatalf("resolved layer %+v", l)
			}
		}
	})
}
