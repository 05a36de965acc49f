package layer

import (
	"archive/tar"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const modeBits = fs.ModePerm | fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid

// withUmask runs the test under a restrictive umask, to show it has no say.
func withUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
}

func TestUnpackModes(t *testing.T) {
	withUmask(t)
	tests := []struct {
		name string
		e    ent
		want fs.FileMode
	}{
		{"file 0644", file("x", "a"), 0o644},
		{"file 0755", file("x", "a").with(mode(0o755)), 0o755},
		{"file 0777", file("x", "a").with(mode(0o777)), 0o777},
		{"file 0000", file("x", "a").with(mode(0)), 0},
		{"file sticky", file("x", "a").with(mode(0o1644)), 0o644 | fs.ModeSticky},
		{"dir 0755", dirEnt("x/"), 0o755 | fs.ModeDir},
		{"dir 0700", dirEnt("x/").with(mode(0o700)), 0o700 | fs.ModeDir},
		{"dir sticky 1777", dirEnt("x/").with(mode(0o1777)), 0o777 | fs.ModeSticky | fs.ModeDir},
		{"dir setgid 2775", dirEnt("x/").with(mode(0o2775)), 0o775 | fs.ModeSetgid | fs.ModeDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			if _, err := s.unpack(t, mustTar(t, tt.e), Options{}); err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			fi, err := os.Lstat(filepath.Join(s.dir, "x"))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode() & (modeBits | fs.ModeType); got != tt.want {
				t.Errorf("mode = %v, want %v", got, tt.want)
			}
		})
	}
}

func mode(m int64) func(*tar.Header) {
	return func(h *tar.Header) { h.Mode = m }
}

func owner(uid, gid int) func(*tar.Header) {
	return func(h *tar.Header) { h.Uid, h.Gid = uid, gid }
}

func TestUnpackImplicitParents(t *testing.T) {
	withUmask(t)
	s := newSandbox(t)
	data := mustTar(t, file("a/b/c", "x").with(owner(1000, 1000)))
	if _, err := s.unpack(t, data, Options{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	for _, d := range []string{"a", "a/b"} {
		fi, err := os.Lstat(filepath.Join(s.dir, d))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode()&(modeBits|fs.ModeType), fs.ModeDir|0o755; got != want {
			t.Errorf("%s: mode = %v, want %v", d, got, want)
		}
		if st := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (st.Uid != 0 || st.Gid != 0) {
			t.Errorf("%s: owner = %d:%d, want 0:0", d, st.Uid, st.Gid)
		}
	}
}

func TestUnpackOwnership(t *testing.T) {
	needRoot(t, "chowns files to other users")
	s := newSandbox(t)
	ents := []ent{
		dirEnt("d/").with(owner(2000, 2001)),
		file("d/f", "x").with(owner(1000, 1001)),
		symlink("d/l", "f").with(owner(3000, 3001)),
		file("g", "x").with(owner(0, 0)),
	}
	if _, err := s.unpack(t, mustTar(t, ents...), Options{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	for _, e := range ents {
		fi, err := os.Lstat(filepath.Join(s.dir, e.hdr.Name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != e.hdr.Uid || int(st.Gid) != e.hdr.Gid {
			t.Errorf("%s: owner = %d:%d, want %d:%d", e.hdr.Name, st.Uid, st.Gid, e.hdr.Uid, e.hdr.Gid)
		}
	}
}

func TestUnpackTimes(t *testing.T) {
	at := func(sec int64) time.Time { return time.Unix(sec, 0) }
	times := func(m, a int64) func(*tar.Header) {
		return func(h *tar.Header) { h.ModTime, h.AccessTime, h.Format = at(m), at(a), tar.FormatPAX }
	}
	s := newSandbox(t)
	ents := []ent{
		dirEnt("d/").with(times(1000, 1001)),
		dirEnt("d/sub/").with(times(2000, 2001)),
		file("d/f", "x").with(times(3000, 3001)),
		symlink("d/l", "f").with(times(4000, 4001)),
		file("d/sub/late", "x").with(times(5000, 5001)), // written after d/sub's entry
		dirEnt("e/").with(times(6000, 6001)),
		dirEnt("e/").with(times(7000, 7001)), // the later entry wins
		dirEnt("r/s/").with(times(8000, 8001)),
		file("r", "x"), // removes r/s
		dirEnt("r/").with(times(9000, 9001)),
		file("r/s/z", "x").with(times(9100, 9101)), // r/s is a new, implicit directory
	}
	if _, err := s.unpack(t, mustTar(t, ents...), Options{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	want := map[string][2]int64{
		"d": {1000, 1001}, "d/sub": {2000, 2001}, "d/f": {3000, 3001},
		"d/l": {4000, 4001}, "d/sub/late": {5000, 5001}, "e": {7000, 7001},
		"r": {9000, 9001}, "r/s/z": {9100, 9101},
	}
	for name, w := range want {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(s.dir, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mtim.Sec != w[0] || st.Atim.Sec != w[1] {
			t.Errorf("%s: mtime, atime = %d, %d; want %d, %d", name, st.Mtim.Sec, st.Atim.Sec, w[0], w[1])
		}
	}
	fi, err := os.Lstat(filepath.Join(s.dir, "r/s"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.ModTime().Unix() == 8000 {
		t.Error("r/s has the removed entry's mtime; want the new implicit directory's own")
	}
}

// TestUnpackIgnoresXattrs checks that xattrs in PAX records are not applied.
func TestUnpackIgnoresXattrs(t *testing.T) {
	s := newSandbox(t)
	e := file("f", "x")
	e.hdr.Format = tar.FormatPAX
	e.hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.moat":              "v",
		"SCHILY.xattr.trusted.overlay.opaque": "y",
	}
	if _, err := s.unpack(t, mustTar(t, e), Options{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	buf := make([]byte, 64)
	for _, attr := range []string{"user.moat", "trusted.overlay.opaque"} {
		n, err := unix.Lgetxattr(filepath.Join(s.dir, "f"), attr, buf)
		if !errors.Is(err, unix.ENODATA) {
			t.Errorf("xattr %s = %q, %v; want ENODATA", attr, buf[:max(n, 0)], err)
		}
	}
}
