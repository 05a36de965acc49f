package gate

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pkg/sftp"
)

func TestSFTPMkdirRemove(t *testing.T) {
	env := startSFTP(t, 0)
	env.plant(t)
	c := env.c
	if err := c.Mkdir("/new"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(env.inbox, "new")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("mkdir: %v %v, want a 0700 directory", fi, err)
	}
	for _, step := range []struct {
		name string
		op   func() error
		ok   bool
	}{
		{"rmdir a file", func() error { return c.RemoveDirectory("file") }, false},
		{"rmdir a non-empty directory", func() error { return c.RemoveDirectory("dir") }, false},
		{"rmdir", func() error { return c.RemoveDirectory("new") }, true},
		{"remove", func() error { return c.Remove("dir/nested") }, true},
		{"remove a planted link", func() error { return c.Remove("abs-file") }, true},
		{"rmdir the inbox", func() error { return c.RemoveDirectory("/") }, false},
	} {
		if err := step.op(); (err == nil) != step.ok {
			t.Errorf("%s: error %v, want ok=%v", step.name, err, step.ok)
		}
	}
	if _, err := os.Lstat(filepath.Join(env.inbox, "abs-file")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("planted link still there: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(env.outside, "secret")); string(b) != "secret" {
		t.Errorf("the link's target changed: %q %v", b, err)
	}
}

func TestSFTPTruncate(t *testing.T) {
	env := startSFTP(t, 1<<20)
	if err := put(env.c, "blob", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if err := env.c.Truncate("blob", 4); err != nil {
		t.Errorf("truncate: %v", err)
	}
	if err := env.c.Truncate("blob", 2<<20); err == nil {
		t.Error("truncate past the limit succeeded")
	}
	if b, err := os.ReadFile(filepath.Join(env.inbox, "blob")); string(b) != "0123" {
		t.Errorf("after truncate: %q %v, want 0123", b, err)
	}
}

func TestSFTPChmod(t *testing.T) {
	for _, tc := range []struct {
		mode, want fs.FileMode
	}{
		{0o644, 0o644},
		{0o4755, 0o755},
		{0o755 | fs.ModeSetuid, 0o755},
		{0o2750 | fs.ModeSetgid, 0o750},
		{0o1777 | fs.ModeSticky, 0o777},
	} {
		env := startSFTP(t, 0)
		env.plant(t)
		if err := env.c.Chmod("file", tc.mode); err != nil {
			t.Errorf("chmod %o: %v", tc.mode, err)
		}
		fi, err := os.Stat(filepath.Join(env.inbox, "file"))
		if err != nil || fi.Mode() != tc.want {
			t.Errorf("chmod %o: mode %v (%v), want %v", tc.mode, fi.Mode(), err, tc.want)
		}
	}
}

func TestSFTPChtimes(t *testing.T) {
	env := startSFTP(t, 0)
	env.plant(t)
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := env.c.Chtimes("file", when, when); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(env.inbox, "file")); err != nil || !fi.ModTime().Equal(when) {
		t.Errorf("mtime %v (%v), want %v", fi.ModTime(), err, when)
	}
}

func TestSFTPRename(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rename   func(c *sftp.Client) error
		ok       bool
		inboxNow []string // files left in the inbox, sorted
	}{
		{"rename", func(c *sftp.Client) error { return c.Rename("a", "b") }, true, []string{"b", "c"}},
		{"into a directory", func(c *sftp.Client) error { return c.Rename("/a", "/d/a") }, true, []string{"c", "d/a"}},
		{"rename does not replace", func(c *sftp.Client) error { return c.Rename("a", "c") }, false, []string{"a", "c"}},
		{"posix rename replaces", func(c *sftp.Client) error { return c.PosixRename("a", "c") }, true, []string{"c"}},
		{"dotdot stays inside", func(c *sftp.Client) error { return c.Rename("a", "../../b") }, true, []string{"b", "c"}},
		{"through a planted link", func(c *sftp.Client) error { return c.Rename("a", "link/a") }, false, []string{"a", "c"}},
		{"posix through a planted link", func(c *sftp.Client) error { return c.PosixRename("a", "link/a") }, false, []string{"a", "c"}},
		{"from through a planted link", func(c *sftp.Client) error { return c.Rename("link/secret", "stolen") }, false, []string{"a", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSFTP(t, 0)
			writeFile(t, filepath.Join(env.inbox, "a"), "a")
			writeFile(t, filepath.Join(env.inbox, "c"), "c")
			mkdirs(t, filepath.Join(env.inbox, "d"))
			if err := os.Symlink(env.outside, filepath.Join(env.inbox, "link")); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, env.outside)
			err := tc.rename(env.c)
			if (err == nil) != tc.ok {
				t.Fatalf("rename: %v, want ok=%v", err, tc.ok)
			}
			var got []string
			filepath.WalkDir(env.inbox, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					rel, _ := filepath.Rel(env.inbox, p)
					got = append(got, filepath.ToSlash(rel))
				}
				return err
			})
			if diff := cmp.Diff(tc.inboxNow, got); diff != "" {
				t.Errorf("inbox files (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, snapshot(t, env.outside)); diff != "" {
				t.Errorf("outside changed (-before +after):\n%s", diff)
			}
		})
	}
}
