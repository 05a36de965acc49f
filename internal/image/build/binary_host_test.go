package build

import (
	"archive/tar"
	"bytes"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/image/ldso"
	"github.com/moatcloud/moat/internal/image/ldso/ldsotest"
)

// TestBuildAddBinary builds an image from a program gcc linked against a
// library of its own, on this machine's real files: the image holds the
// program, its interpreter, libc and the library, each with its real
// content at the path the loader opens, and two builds are identical.
func TestBuildAddBinary(t *testing.T) {
	greet := ldsotest.Greet(t)
	opts := Options{
		Binaries:   []File{{Src: greet, Dst: "/app/bin/greet"}},
		Entrypoint: []string{"/app/bin/greet"},
		Cmd:        []string{"moat"},
		Created:    created,
	}
	data, desc := build(t, opts)
	img := readImage(t, data)
	prog, err := ldso.Host{}.Object(greet)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // image path: source
		"app/bin/greet":       greet,
		"app/lib/libgreet.so": filepath.Join(filepath.Dir(greet), "..", "lib", "libgreet.so"),
		prog.Interp[1:]:       prog.Interp,
	}
	for name, src := range want {
		if content, err := os.ReadFile(src); err != nil {
			t.Fatal(err)
		} else if got, ok := img.content[name]; !ok || !bytes.Equal(got, content) {
			t.Errorf("image %s: %d bytes (present: %v), want the %d bytes of %s", name, len(got), ok, len(content), src)
		}
	}
	std := ldso.DefaultDirs(prog.Class, prog.Machine)
	libc := slices.ContainsFunc(img.layer, func(h *tar.Header) bool {
		return path.Base(h.Name) == "libc.so.6" && slices.Contains(std, "/"+path.Dir(h.Name)) && h.Typeflag == tar.TypeReg
	})
	if !libc {
		t.Errorf("no libc.so.6 as a regular file in %s; layer holds %v", strings.Join(std, ", "), names(img))
	}
	if again, _ := build(t, opts); !bytes.Equal(again, data) {
		t.Errorf("a second build differs from %s", desc.Digest)
	}
}

func names(img *image) []string {
	var out []string
	for _, h := range img.layer {
		out = append(out, h.Name)
	}
	return out
}
