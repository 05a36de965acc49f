package gate

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tree lists what is under dir, sorted: "d/" for a directory, "f=content"
// for a regular file, "l@" for a symlink.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			got = append(got, rel+"/")
		case d.Type()&fs.ModeSymlink != 0:
			got = append(got, rel+"@")
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got = append(got, rel+"="+string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

// without is entries, as tree lists them, less the one for name.
func without(entries []string, name string) []string {
	return slices.DeleteFunc(slices.Clone(entries), func(e string) bool {
		before, _, _ := strings.Cut(e, "=")
		return strings.TrimSuffix(before, "@") == name
	})
}

// attrs maps dir and every path under it to what setstat could change:
// mode, size, modification time, owner.
func attrs(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		got[p] = fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			got[p] += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestSFTPMkdir: the client can make the blobs directory, 0700, and no
// other.
func TestSFTPMkdir(t *testing.T) {
	env := startSFTP(t, 0)
	c := env.c
	for _, step := range []struct {
		name    string
		dir     string
		wantErr error
	}{
		{"another name", "x", fs.ErrPermission},
		{"inside blobs before it exists", "blobs/sub", fs.ErrPermission},
		{"absolute elsewhere", "/tmp", fs.ErrPermission},
		{"outside", "../outside/x", fs.ErrPermission},
		{"the inbox", "/", fs.ErrPermission},
		{"a blob name", blobName(1), fs.ErrPermission},
		{"a part name", partName(1), fs.ErrPermission},
		{"blobs", "/blobs", nil},
		{"blobs again", "blobs", errAny},
		{"inside blobs", "blobs/sub", fs.ErrPermission},
		{"dotdot inside blobs", "blobs/../x", fs.ErrPermission},
	} {
		if err := c.Mkdir(step.dir); !matchErr(err, step.wantErr) {
			t.Errorf("%s: mkdir %q: %v, want %v", step.name, step.dir, err, step.wantErr)
		}
	}
	if fi, err := os.Lstat(filepath.Join(env.inbox, blobDir)); err != nil || fi.Mode() != fs.ModeDir|0o700 {
		t.Errorf("mkdir blobs: %v %v, want a 0700 directory", fi, err)
	}
	if err := c.MkdirAll(blobDir); err != nil {
		t.Errorf("MkdirAll(blobs) with blobs there: %v", err)
	}
	if diff := cmp.Diff([]string{"blobs/"}, tree(t, env.inbox)); diff != "" {
		t.Errorf("inbox (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"secret=secret"}, tree(t, env.outside)); diff != "" {
		t.Errorf("outside (-want +got):\n%s", diff)
	}
}

// TestSFTPRemove: the client can remove blobs and parts (a planted link
// is removed, not its target) and nothing else; it removes no directory.
func TestSFTPRemove(t *testing.T) {
	env := startSFTP(t, 0)
	env.plant(t)
	writeFile(t, filepath.Join(env.inbox, partName(8)), "part")
	c := env.c
	for _, step := range []struct {
		name    string
		op      func() error
		wantErr error
		gone    string // what the step removes from the inbox
	}{
		{"a blob", func() error { return c.Remove(bFile) }, nil, bFile},
		{"a part", func() error { return c.Remove("/blobs/x/../" + partName(8)[len("blobs/"):]) }, nil, partName(8)},
		{"a planted link out", func() error { return c.Remove(bAbsFile) }, nil, bAbsFile},
		{"a planted link to a directory", func() error { return c.Remove(bAbsDir) }, nil, bAbsDir},
		{"a blob that is not there", func() error { return c.Remove(blobName(9)) }, fs.ErrNotExist, ""},
		{"another name", func() error { return c.Remove("file") }, fs.ErrPermission, ""},
		{"another link", func() error { return c.Remove("abs-dir") }, fs.ErrPermission, ""},
		{"in another directory", func() error { return c.Remove("dir/nested") }, fs.ErrPermission, ""},
		{"through a link", func() error { return c.Remove("abs-dir/secret") }, fs.ErrPermission, ""},
		{"outside", func() error { return c.Remove(env.outside + "/secret") }, fs.ErrPermission, ""},
		{"blobs", func() error { return c.Remove("blobs") }, fs.ErrPermission, ""},
		{"rmdir blobs", func() error { return c.RemoveDirectory("blobs") }, fs.ErrPermission, ""},
		{"rmdir another directory", func() error { return c.RemoveDirectory("dir") }, fs.ErrPermission, ""},
		{"rmdir a blob", func() error { return c.RemoveDirectory(bRelFile) }, fs.ErrPermission, ""},
		{"rmdir the inbox", func() error { return c.RemoveDirectory("/") }, fs.ErrPermission, ""},
	} {
		before := tree(t, env.inbox)
		if err := step.op(); !matchErr(err, step.wantErr) {
			t.Errorf("%s: %v, want %v", step.name, err, step.wantErr)
		}
		want := before
		if step.gone != "" {
			want = without(before, step.gone)
			if len(want) != len(before)-1 {
				t.Fatalf("%s: %q is not in the inbox to remove", step.name, step.gone)
			}
		}
		if diff := cmp.Diff(want, tree(t, env.inbox)); diff != "" {
			t.Errorf("%s: inbox (-want +got):\n%s", step.name, diff)
		}
	}
	if diff := cmp.Diff([]string{"secret=secret"}, tree(t, env.outside)); diff != "" {
		t.Errorf("outside (-want +got):\n%s", diff)
	}
}

// TestSFTPSetstatRefused: modes, owners, sizes and times are not the
// client's to set, by path or by handle, on anything: the inbox, blobs
// (the attack: chmod blobs 0755 to open it to others), a blob, a part or
// a planted link.
func TestSFTPSetstatRefused(t *testing.T) {
	env := startSFTP(t, 1<<20)
	env.plant(t)
	writeFile(t, filepath.Join(env.inbox, partName(8)), "0123456789")
	c := env.c
	blob, err := c.OpenFile(bFile, os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	part, err := c.OpenFile(partName(8), os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		op   func() error
	}{
		{"chmod /", func() error { return c.Chmod("/", 0o777) }},
		{"chmod .", func() error { return c.Chmod(".", 0o755) }},
		{"chmod blobs 0755", func() error { return c.Chmod("blobs", 0o755) }},
		{"chmod /blobs/ 0777", func() error { return c.Chmod("/blobs/", 0o777) }},
		{"chmod a blob", func() error { return c.Chmod(bFile, 0o644) }},
		{"chmod a blob setuid", func() error { return c.Chmod(bFile, 0o4755|fs.ModeSetuid) }},
		{"chmod a part", func() error { return c.Chmod(partName(8), 0o666) }},
		{"chmod a planted link", func() error { return c.Chmod(bAbsFile, 0o777) }},
		{"chmod another name", func() error { return c.Chmod("file", 0o777) }},
		{"chtimes /", func() error { return c.Chtimes("/", when, when) }},
		{"chtimes blobs", func() error { return c.Chtimes("blobs", when, when) }},
		{"chtimes a blob", func() error { return c.Chtimes(bFile, when, when) }},
		{"chtimes a planted link", func() error { return c.Chtimes(bRelFile, when, when) }},
		{"truncate a blob", func() error { return c.Truncate(bFile, 2) }},
		{"truncate a part to 0", func() error { return c.Truncate(partName(8), 0) }},
		{"truncate past the limit", func() error { return c.Truncate(partName(8), 2<<20) }},
		{"truncate a planted link", func() error { return c.Truncate(bAbsFile, 0) }},
		{"chown /", func() error { return c.Chown("/", 1234, 1234) }},
		{"chown blobs", func() error { return c.Chown("blobs", 1234, 1234) }},
		{"chown a blob", func() error { return c.Chown(bFile, 1234, 1234) }},
		{"chown to root", func() error { return c.Chown(partName(8), 0, 0) }},
		{"fchmod", func() error { return blob.Chmod(0o777) }},
		{"fchown", func() error { return blob.Chown(1234, 1234) }},
		{"ftruncate", func() error { return part.Truncate(3) }},
		{"ftruncate past the limit", func() error { return part.Truncate(2 << 20) }},
	} {
		before, outside := attrs(t, env.inbox), snapshot(t, env.outside)
		if err := tc.op(); !matchErr(err, fs.ErrPermission) {
			t.Errorf("%s: %v, want permission denied", tc.name, err)
		}
		if diff := cmp.Diff(before, attrs(t, env.inbox)); diff != "" {
			t.Errorf("%s: inbox changed (-before +after):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(outside, snapshot(t, env.outside)); diff != "" {
			t.Errorf("%s: outside changed (-before +after):\n%s", tc.name, diff)
		}
	}
	// The handles still work: only the setstat was refused.
	if _, err := part.WriteAt([]byte("x"), 10); err != nil {
		t.Errorf("write after a refused ftruncate: %v", err)
	}
}

func TestSFTPRename(t *testing.T) {
	var (
		p1, b1 = partName(1), blobName(1)
		p2, b2 = partName(2), blobName(2)
		p3     = partName(3) // a planted link out
		b3     = blobName(3)
		start  = []string{"blobs/", b2 + "=old", p1 + "=one", p2 + "=two", p3 + "@", "link@", "other=other"}
	)
	for _, tc := range []struct {
		name     string
		rename   func(env *sftpEnv) error
		wantErr  error
		inboxNow []string // sorted, as tree lists it; nil: as it started
	}{
		{"part to its blob", func(env *sftpEnv) error { return env.c.Rename(p1, b1) }, nil,
			[]string{"blobs/", b1 + "=one", b2 + "=old", p2 + "=two", p3 + "@", "link@", "other=other"}},
		{"posix part to its blob", func(env *sftpEnv) error { return env.c.PosixRename(p1, b1) }, nil,
			[]string{"blobs/", b1 + "=one", b2 + "=old", p2 + "=two", p3 + "@", "link@", "other=other"}},
		{"cleaned paths", func(env *sftpEnv) error { return env.c.Rename("/blobs/x/../"+p1[len("blobs/"):], "../../"+b1) }, nil,
			[]string{"blobs/", b1 + "=one", b2 + "=old", p2 + "=two", p3 + "@", "link@", "other=other"}},
		{"rename does not replace", func(env *sftpEnv) error { return env.c.Rename(p2, b2) }, errAny, nil},
		{"posix rename replaces", func(env *sftpEnv) error { return env.c.PosixRename(p2, b2) }, nil,
			[]string{"blobs/", b2 + "=two", p1 + "=one", p3 + "@", "link@", "other=other"}},
		{"a planted link renames as a link", func(env *sftpEnv) error { return env.c.PosixRename(p3, b3) }, nil,
			[]string{"blobs/", b2 + "=old", b3 + "@", p1 + "=one", p2 + "=two", "link@", "other=other"}},
		{"part to another blob", func(env *sftpEnv) error { return env.c.Rename(p1, b2) }, fs.ErrPermission, nil},
		{"posix part to another blob", func(env *sftpEnv) error { return env.c.PosixRename(p1, b2) }, fs.ErrPermission, nil},
		{"part to a new blob", func(env *sftpEnv) error { return env.c.Rename(p1, blobName(9)) }, fs.ErrPermission, nil},
		{"part to a part", func(env *sftpEnv) error { return env.c.Rename(p1, partName(9)) }, fs.ErrPermission, nil},
		{"blob back to its part", func(env *sftpEnv) error { return env.c.PosixRename(b2, p2) }, fs.ErrPermission, nil},
		{"blob to another name", func(env *sftpEnv) error { return env.c.Rename(b2, "stolen") }, fs.ErrPermission, nil},
		{"part to another name", func(env *sftpEnv) error { return env.c.Rename(p1, "blobs/sha256-x") }, fs.ErrPermission, nil},
		{"another name to a blob", func(env *sftpEnv) error { return env.c.PosixRename("other", b1) }, fs.ErrPermission, nil},
		{"blobs", func(env *sftpEnv) error { return env.c.Rename("blobs", "x") }, fs.ErrPermission, nil},
		{"the inbox", func(env *sftpEnv) error { return env.c.Rename("/", b1) }, fs.ErrPermission, nil},
		{"dotdot to outside", func(env *sftpEnv) error { return env.c.Rename(p1, "../outside/x") }, fs.ErrPermission, nil},
		{"absolute to outside", func(env *sftpEnv) error {
			return env.c.PosixRename(p1, filepath.Join(env.outside, p1[len("blobs/"):]))
		}, fs.ErrPermission, nil},
		{"through a planted link", func(env *sftpEnv) error { return env.c.Rename(p1, "link/"+b1) }, fs.ErrPermission, nil},
		{"posix through a planted link", func(env *sftpEnv) error { return env.c.PosixRename(p1, "link/sha256-x") }, fs.ErrPermission, nil},
		{"from through a planted link", func(env *sftpEnv) error { return env.c.Rename("link/secret", "stolen") }, fs.ErrPermission, nil},
		{"from through a planted link to a blob", func(env *sftpEnv) error {
			return env.c.PosixRename("link/"+p1[len("blobs/"):], b1)
		}, fs.ErrPermission, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSFTP(t, 0)
			mkdirs(t, filepath.Join(env.inbox, blobDir))
			writeFile(t, filepath.Join(env.inbox, p1), "one")
			writeFile(t, filepath.Join(env.inbox, p2), "two")
			writeFile(t, filepath.Join(env.inbox, b2), "old")
			writeFile(t, filepath.Join(env.inbox, "other"), "other")
			writeFile(t, filepath.Join(env.outside, p1[len("blobs/"):]), "outside")
			for name, target := range map[string]string{"link": env.outside, p3: filepath.Join(env.outside, "secret")} {
				if err := os.Symlink(target, filepath.Join(env.inbox, name)); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, env.outside)
			err := tc.rename(env)
			if !matchErr(err, tc.wantErr) {
				t.Fatalf("rename: %v, want %v", err, tc.wantErr)
			}
			want := tc.inboxNow
			if want == nil {
				want = start
			}
			if diff := cmp.Diff(slices.Sorted(slices.Values(want)), tree(t, env.inbox)); diff != "" {
				t.Errorf("inbox (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, snapshot(t, env.outside)); diff != "" {
				t.Errorf("outside changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestSFTPRenameThroughBlobsLink: with blobs a planted link out of the
// inbox, even the one allowed rename does not reach the outside.
func TestSFTPRenameThroughBlobsLink(t *testing.T) {
	for _, tc := range []struct {
		name  string
		link  int // which of blobsLinks
		posix bool
	}{
		{"absolute link", 0, false},
		{"absolute link, posix", 0, true},
		{"relative link", 1, false},
		{"relative link, posix", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSFTP(t, 0)
			env.linkBlobs(t, env.blobsLinks()[tc.link])
			before, inbox := snapshot(t, env.outside), tree(t, env.inbox)
			rename := env.c.Rename
			if tc.posix {
				rename = env.c.PosixRename
			}
			if err := rename(partName(1), blobName(1)); !matchErr(err, fs.ErrPermission) {
				t.Errorf("rename through blobs: %v, want permission denied", err)
			}
			if diff := cmp.Diff(before, snapshot(t, env.outside)); diff != "" {
				t.Errorf("outside changed (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(inbox, tree(t, env.inbox)); diff != "" {
				t.Errorf("inbox changed (-before +after):\n%s", diff)
			}
		})
	}
}
