package layer

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestUnpackHardlinks(t *testing.T) {
	s := newSandbox(t)
	ents := []ent{
		file("a", "shared").with(mode(0o640)),
		hardlink("./b", "./a"),
		hardlink("dir/c", "a"), // parent is implicit
		hardlink("d", "dir/c"),
	}
	if _, err := s.unpack(t, mustTar(t, ents...), Options{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	a, err := os.Lstat(filepath.Join(s.dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "dir/c", "d"} {
		fi, err := os.Lstat(filepath.Join(s.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(a, fi) {
			t.Errorf("%s is not the same inode as a", name)
		}
	}
	if n := a.Sys().(*syscall.Stat_t).Nlink; n != 4 {
		t.Errorf("a has %d links, want 4", n)
	}
	if a.Mode().Perm() != 0o640 {
		t.Errorf("a mode = %v, want 0640 (hardlink headers do not change it)", a.Mode())
	}
}

// TestUnpackOverwrite checks that a later entry replaces an earlier one at
// the same path.
func TestUnpackOverwrite(t *testing.T) {
	tests := []struct {
		name  string
		ents  []ent
		check func(t *testing.T, dir string)
	}{
		{
			name:  "file over file",
			ents:  []ent{file("x", "old"), file("x", "new").with(mode(0o600))},
			check: wantFile("x", "new", 0o600),
		},
		{
			name:  "file over symlink",
			ents:  []ent{file("target", "keep"), symlink("x", "target"), file("x", "new")},
			check: all(wantFile("x", "new", 0o644), wantFile("target", "keep", 0o644)),
		},
		{
			name:  "file over hardlink",
			ents:  []ent{file("target", "keep"), hardlink("x", "target"), file("x", "new")},
			check: all(wantFile("x", "new", 0o644), wantFile("target", "keep", 0o644)),
		},
		{
			name:  "file over directory",
			ents:  []ent{dirEnt("x/"), file("x/inner", "gone"), file("x", "new")},
			check: wantFile("x", "new", 0o644),
		},
		{
			name:  "symlink over file",
			ents:  []ent{file("x", "old"), symlink("x", "/elsewhere")},
			check: wantLink("x", "/elsewhere"),
		},
		{
			name:  "symlink over directory",
			ents:  []ent{dirEnt("x/"), file("x/inner", "gone"), symlink("x", "y")},
			check: wantLink("x", "y"),
		},
		{
			name:  "hardlink over file",
			ents:  []ent{file("target", "linked"), file("x", "old"), hardlink("x", "target")},
			check: wantFile("x", "linked", 0o644),
		},
		{
			name:  "directory over directory",
			ents:  []ent{dirEnt("x/"), file("x/inner", "kept"), dirEnt("x/").with(mode(0o700))},
			check: all(wantDir("x", 0o700), wantFile("x/inner", "kept", 0o644)),
		},
		{
			name:  "directory over file",
			ents:  []ent{file("x", "old"), dirEnt("x/").with(mode(0o750))},
			check: wantDir("x", 0o750),
		},
		{
			name:  "directory over symlink to directory",
			ents:  []ent{dirEnt("y/"), symlink("x", "y"), dirEnt("x/")},
			check: all(wantDir("x", 0o755), wantDir("y", 0o755)),
		},
		{
			name:  "layer root updated",
			ents:  []ent{file("f", "x"), dirEnt("./").with(mode(0o750))},
			check: all(wantDir(".", 0o750), wantFile("f", "x", 0o644)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			if _, err := s.unpack(t, mustTar(t, tt.ents...), Options{}); err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			tt.check(t, s.dir)
			s.checkConfined(t)
		})
	}
}

func all(checks ...func(*testing.T, string)) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		for _, c := range checks {
			c(t, dir)
		}
	}
}

func wantFile(name, content string, perm fs.FileMode) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want regular file %v", name, fi.Mode(), perm)
			return
		}
		if b, _ := os.ReadFile(p); string(b) != content {
			t.Errorf("%s = %q, want %q", name, b, content)
		}
	}
}

func wantDir(name string, perm fs.FileMode) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if !fi.IsDir() || fi.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want directory %v", name, fi.Mode(), perm)
		}
	}
}

func wantLink(name, target string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if got, err := os.Readlink(filepath.Join(dir, name)); err != nil || got != target {
			t.Errorf("readlink %s = %q, %v; want %q", name, got, err, target)
		}
	}
}
