package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// ent is one tar entry to build.
type ent struct {
	hdr  tar.Header
	body string
}

var epoch = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func file(name, body string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: epoch}, body: body}
}

func dirEnt(name string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch}}
}

func symlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func hardlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: epoch}}
}

func special(name string, typ byte, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: typ, Name: name, Mode: mode, ModTime: epoch}}
}

// with returns e with its header changed by fn.
func (e ent) with(fn func(h *tar.Header)) ent {
	fn(&e.hdr)
	return e
}

func tarOf(ents ...ent) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mustTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	b, err := tarOf(ents...)
	if err != nil {
		t.Fatalf("build tar: %v", err)
	}
	return b
}

// sandbox is a layer directory with neighbours that must stay untouched:
// parent/{layer, outside/, sentinel}.
type sandbox struct {
	parent, dir, outside, sentinel string
	before                         map[string]inode // of everything but dir
}

// inode is what an escaping chmod, chown, utimes or setxattr would change.
type inode struct {
	Mode, UID, GID uint32
	Mtime          unix.Timespec
	Opaque         string
}

func stateOf(t testing.TB, p string) inode {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("stat outside the layer: %v", err)
	}
	buf := make([]byte, 16)
	n, _ := unix.Lgetxattr(p, opaqueXattr, buf)
	return inode{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Mtime: st.Mtim, Opaque: string(buf[:max(n, 0)])}
}

func (s sandbox) states(t testing.TB) map[string]inode {
	m := map[string]inode{}
	for _, p := range []string{s.parent, s.outside, s.sentinel} {
		m[p] = stateOf(t, p)
	}
	return m
}

const sentinelText = "do not touch"

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	p := t.TempDir()
	s := sandbox{
		parent:   p,
		dir:      filepath.Join(p, "layer"),
		outside:  filepath.Join(p, "outside"),
		sentinel: filepath.Join(p, "sentinel"),
	}
	for _, d := range []string{s.dir, s.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(s.sentinel, []byte(sentinelText), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { makeRemovable(s.dir) })
	s.before = s.states(t)
	return s
}

// makeRemovable opens up directories a layer made unwritable, so that the
// TempDir cleanup also works when the tests do not run as root.
func makeRemovable(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
}

func (s sandbox) unpack(t testing.TB, data []byte, opts Options) (Stats, error) {
	t.Helper()
	return Unpack(context.Background(), bytes.NewReader(data), s.dir, opts)
}

// checkConfined fails the test if anything beside the layer directory
// changed: the parent holds exactly layer, outside and sentinel, outside is
// empty, the sentinel is intact and none of them changed mode, owner, mtime
// or opaque xattr.
func (s sandbox) checkConfined(t testing.TB) {
	t.Helper()
	if diff := cmp.Diff([]string{"layer", "outside", "sentinel"}, listDir(t, s.parent)); diff != "" {
		t.Errorf("parent of layer dir changed (-want +got):\n%s", diff)
	}
	if got := listDir(t, s.outside); len(got) != 0 {
		t.Errorf("outside dir got %q, want empty", got)
	}
	if diff := cmp.Diff(s.before, s.states(t)); diff != "" {
		t.Errorf("inodes outside the layer changed (-before +after):\n%s", diff)
	}
	if b, _ := os.ReadFile(s.sentinel); string(b) != sentinelText {
		t.Errorf("sentinel content = %q, want %q", b, sentinelText)
	}
}

func listDir(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func needRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}
