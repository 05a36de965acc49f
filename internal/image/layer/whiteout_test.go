package layer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// wantWhiteout checks that name is an overlayfs whiteout: a char device 0:0.
func wantWhiteout(t *testing.T, dir, name string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, name), &st); err != nil {
		t.Errorf("whiteout %s: %v", name, err)
		return
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout %s: mode %o rdev %d, want char device 0:0", name, st.Mode, st.Rdev)
	}
}

func TestUnpackWhiteouts(t *testing.T) {
	needRoot(t, "creates whiteout device nodes")
	s := newSandbox(t)
	ents := []ent{
		dirEnt("a/"),
		file("a/.wh.b", ""),
		file(".wh.top", ""),
		file("new/deep/.wh.x", ""), // parents are implicit
		file("same/kept", "mine"),
		file("same/.wh.kept", ""), // hides lower layers only: same/kept stays
		file("later/.wh.f", ""),
		file("later/f", "replaces the whiteout"),
	}
	st, err := s.unpack(t, mustTar(t, ents...), Options{})
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	if want := (Stats{Entries: 8, Bytes: int64(len("mine") + len("replaces the whiteout"))}); st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
	for _, name := range []string{"a/b", "top", "new/deep/x"} {
		wantWhiteout(t, s.dir, name)
	}
	wantFile("same/kept", "mine", 0o644)(t, s.dir)
	wantFile("later/f", "replaces the whiteout", 0o644)(t, s.dir)
	wantDir("new/deep", 0o755)(t, s.dir)
	if diff := cmp.Diff([]string{"b"}, listDir(t, filepath.Join(s.dir, "a"))); diff != "" {
		t.Errorf("a/ (-want +got):\n%s", diff)
	}
	s.checkConfined(t)
}

func TestUnpackOpaque(t *testing.T) {
	needRoot(t, "sets trusted.* xattrs")
	s := newSandbox(t)
	ents := []ent{
		dirEnt("a/"),
		file("a/.wh..wh..opq", ""),
		file("a/f", "x"),
		file("implicit/.wh..wh..opq", ""),
		file(".wh..wh..opq", ""),
		dirEnt("a/").with(mode(0o700)), // updating the directory keeps the mark
	}
	if _, err := s.unpack(t, mustTar(t, ents...), Options{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	for _, d := range []string{"a", "implicit", "."} {
		buf := make([]byte, 8)
		n, err := unix.Lgetxattr(filepath.Join(s.dir, d), opaqueXattr, buf)
		if err != nil || string(buf[:n]) != "y" {
			t.Errorf("%s: %s = %q, %v; want y", d, opaqueXattr, buf[:max(n, 0)], err)
		}
	}
	if diff := cmp.Diff([]string{"f"}, listDir(t, filepath.Join(s.dir, "a"))); diff != "" {
		t.Errorf("a/ (-want +got):\n%s", diff)
	}
	s.checkConfined(t)
}

// TestUnpackMetaWhiteoutSkipped checks that other .wh..wh. names (AUFS
// hardlink bookkeeping) create nothing.
func TestUnpackMetaWhiteoutSkipped(t *testing.T) {
	s := newSandbox(t)
	ents := []ent{file(".wh..wh.plnk/123.4", "x"), file("d/.wh..wh.aufs", "")}
	if _, err := s.unpack(t, mustTar(t, ents...), Options{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	if got := listDir(t, s.dir); len(got) != 0 {
		t.Errorf("layer holds %q, want nothing", got)
	}
}

// TestOverlayMerged mounts two unpacked layers with overlayfs and checks the
// merged view: the upper layer's whiteout and opaque directory hide lower
// files.
func TestOverlayMerged(t *testing.T) {
	needRoot(t, "mounts overlayfs")
	lower, upper := newSandbox(t), newSandbox(t)
	unpackOK(t, lower, file("a/keep", "lower"), file("a/gone", "lower"), file("b/old", "lower"), file("c/x", "lower"))
	unpackOK(t, upper, file("a/.wh.gone", ""), file("b/.wh..wh..opq", ""), file("b/new", "upper"))

	merged := t.TempDir()
	opts := "lowerdir=" + upper.dir + ":" + lower.dir
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount overlay (%s): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})
	for name, want := range map[string]string{"a/keep": "lower", "b/new": "upper", "c/x": "lower"} {
		if b, err := os.ReadFile(filepath.Join(merged, name)); err != nil || string(b) != want {
			t.Errorf("merged %s = %q, %v; want %q", name, b, err, want)
		}
	}
	for _, name := range []string{"a/gone", "b/old"} {
		if _, err := os.Lstat(filepath.Join(merged, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("merged %s: err = %v, want hidden", name, err)
		}
	}
}

func unpackOK(t *testing.T, s sandbox, ents ...ent) {
	t.Helper()
	if _, err := s.unpack(t, mustTar(t, ents...), Options{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
}
