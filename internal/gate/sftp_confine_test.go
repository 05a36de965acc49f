package gate

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pkg/sftp"
)

func TestSFTPReadConfined(t *testing.T) {
	env := startSFTP(t, 0)
	env.plant(t)
	hex := strings.TrimPrefix(bFile, "blobs/sha256-")
	for _, tc := range []struct {
		path    string
		want    string // content, if the read succeeds
		wantErr error
	}{
		{"/" + bFile, "inside", nil},
		{"/blobs/a/../sha256-" + hex, "inside", nil},
		{"../../" + bFile, "inside", nil},
		{bInside, "inside", nil}, // a symlink that stays inside
		{blobName(9), "", fs.ErrNotExist},
		// Planted links at blob names: os.Root refuses them.
		{bAbsFile, "", fs.ErrPermission},
		{bRelFile, "", fs.ErrPermission},
		{bUp, "", fs.ErrPermission},
		{bDangling, "", fs.ErrPermission},
		{bAbsDir, "", fs.ErrPermission},
		// Any other name is refused before the file system is asked.
		{"file", "", fs.ErrPermission},
		{"dir/nested", "", fs.ErrPermission},
		{"../outside/secret", "", fs.ErrPermission},
		{env.outside + "/secret", "", fs.ErrPermission},
		{"abs-dir/secret", "", fs.ErrPermission},
		{"rel-dir/secret", "", fs.ErrPermission},
		{"up" + env.outside + "/secret", "", fs.ErrPermission},
		{bAbsDir + "/secret", "", fs.ErrPermission},
		{"blobs", "", fs.ErrPermission},
		{"/", "", fs.ErrPermission},
	} {
		got, err := get(env.c, tc.path)
		if !matchErr(err, tc.wantErr) || string(got) != tc.want {
			t.Errorf("read %q: %q, %v; want %q, %v", tc.path, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestSFTPBlobsLinkConfined: with blobs a planted link out of the inbox,
// blob names lead nowhere: no read, write, create, remove, list or stat
// reaches the outside.
func TestSFTPBlobsLinkConfined(t *testing.T) {
	for _, link := range []int{0, 1} {
		env := startSFTP(t, 0)
		target := env.blobsLinks()[link]
		env.linkBlobs(t, target)
		c := env.c
		before := snapshot(t, env.outside)
		for _, tc := range []struct {
			name    string
			op      func() error
			wantErr error
		}{
			{"read a blob", func() error { _, err := get(c, bFile); return err }, fs.ErrPermission},
			{"read a part", func() error { _, err := get(c, partName(1)); return err }, fs.ErrPermission},
			{"overwrite a blob", func() error { return put(c, bFile, []byte("x")) }, fs.ErrPermission},
			{"create a blob", func() error { return put(c, blobName(9), []byte("x")) }, fs.ErrPermission},
			{"append to a part", func() error {
				f, err := c.OpenFile(partName(1), os.O_WRONLY)
				if err != nil {
					return err
				}
				return f.Close()
			}, fs.ErrPermission},
			{"remove a blob", func() error { return c.Remove(bFile) }, fs.ErrPermission},
			{"list blobs", func() error { _, err := c.ReadDir("blobs"); return err }, fs.ErrPermission},
			{"stat blobs", func() error { _, err := c.Stat("blobs"); return err }, fs.ErrPermission},
			{"lstat blobs", func() error { _, err := c.Lstat("blobs/"); return err }, fs.ErrPermission},
			{"stat a blob", func() error { _, err := c.Stat(bFile); return err }, fs.ErrPermission},
			{"lstat a blob", func() error { _, err := c.Lstat(bFile); return err }, fs.ErrPermission},
			{"mkdir blobs", func() error { return c.Mkdir("blobs") }, errAny},
			{"chmod blobs", func() error { return c.Chmod("blobs", 0o777) }, fs.ErrPermission},
		} {
			if err := tc.op(); !matchErr(err, tc.wantErr) {
				t.Errorf("blobs -> %s: %s: %v, want %v", target, tc.name, err, tc.wantErr)
			}
		}
		if diff := cmp.Diff(before, snapshot(t, env.outside)); diff != "" {
			t.Errorf("blobs -> %s: outside changed (-before +after):\n%s", target, diff)
		}
		if diff := cmp.Diff([]string{"blobs@"}, tree(t, env.inbox)); diff != "" {
			t.Errorf("blobs -> %s: inbox (-want +got):\n%s", target, diff)
		}
	}
}

// errAny stands for "some error" in a table.
var errAny = errors.New("any error")

func matchErr(err, want error) bool {
	if want == errAny {
		return err != nil
	}
	return errors.Is(err, want) || err == want
}

// TestSFTPAbsolutePath: /etc/passwd is not a blob name, so no read of it
// succeeds, whether the inbox has an etc/passwd of its own or not.
func TestSFTPAbsolutePath(t *testing.T) {
	host, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Skipf("no /etc/passwd to compare with: %v", err)
	}
	for _, fake := range []bool{false, true} {
		env := startSFTP(t, 0)
		if fake {
			mkdirs(t, filepath.Join(env.inbox, "etc"))
			writeFile(t, filepath.Join(env.inbox, "etc", "passwd"), "fake")
		}
		for _, p := range []string{"/etc/passwd", "../../../../../../etc/passwd", "/../etc/passwd"} {
			got, err := get(env.c, p)
			switch {
			case bytes.Equal(got, host):
				t.Fatalf("read %q gave the host's /etc/passwd", p)
			case len(got) > 0 || !errors.Is(err, fs.ErrPermission):
				t.Errorf("fake=%v: read %q: %q, %v; want permission denied", fake, p, got, err)
			}
		}
	}
}

func TestSFTPListConfined(t *testing.T) {
	env := startSFTP(t, 0)
	env.plant(t)
	for _, tc := range []struct {
		dir     string
		wantErr error
	}{
		{"abs-dir", fs.ErrPermission},
		{"rel-dir", fs.ErrPermission},
		{"rel-dir/", fs.ErrPermission},
		{"up", fs.ErrPermission},
		{"dir", fs.ErrPermission},
		{"../outside", fs.ErrPermission},
		{env.outside, fs.ErrPermission},
		{"/etc", fs.ErrPermission},
		{"blobs/..", nil},
		{"/blobs", nil},
		{bAbsDir, fs.ErrPermission},          // a link out at a part name
		{bFile, fs.ErrPermission},            // a file: it is not listed
		{"file", fs.ErrPermission},           // nor is another name
		{bAbsDir + "/", fs.ErrPermission},    // nor a link out, as a directory
		{bInside + "/..", nil},               // the cleaned name is blobs
		{"blobs/sha256-x", fs.ErrPermission}, // not even to see it is not there
	} {
		fis, err := env.c.ReadDir(tc.dir)
		if !matchErr(err, tc.wantErr) {
			t.Errorf("ReadDir(%q): %d entries, %v; want %v", tc.dir, len(fis), err, tc.wantErr)
		}
	}
	// Stat follows links, as far as the inbox.
	for _, tc := range []struct {
		path    string
		wantErr error
	}{
		{"/", nil},
		{"blobs", nil},
		{bFile, nil},
		{bInside, nil},
		{blobName(9), fs.ErrNotExist},
		{bAbsFile, fs.ErrPermission},
		{bRelFile, fs.ErrPermission},
		{bUp, fs.ErrPermission},
		{bDangling, fs.ErrPermission},
		{bAbsDir, fs.ErrPermission},
		{"file", fs.ErrPermission},
		{"abs-dir", fs.ErrPermission},
		{"dir/nested", fs.ErrPermission},
		{"/etc/passwd", fs.ErrPermission},
		{"blobs/sha256-x", fs.ErrPermission},
	} {
		fi, err := env.c.Stat(tc.path)
		if !matchErr(err, tc.wantErr) || (err == nil && fi.Mode()&fs.ModeSymlink != 0) {
			t.Errorf("Stat(%q) = %v, %v; want %v", tc.path, fi, err, tc.wantErr)
		}
	}
	// Lstat describes a link that stays inside; one that leads out is
	// refused, since OpenSSH's sftp lists "link/" by lstat'ing it.
	for _, tc := range []struct {
		link    string
		wantErr error
	}{
		{bInside, nil},
		{bAbsFile, fs.ErrPermission},
		{bRelFile, fs.ErrPermission},
		{bUp, fs.ErrPermission},
		{bDangling, fs.ErrPermission},
		{bAbsDir, fs.ErrPermission},
		{"abs-dir", fs.ErrPermission},
		{"up", fs.ErrPermission},
		{"file", fs.ErrPermission}, // not a link, but not a blob name
		{"dir/nested", fs.ErrPermission},
		{"/etc/passwd", fs.ErrPermission},
	} {
		fi, err := env.c.Lstat(tc.link)
		if !matchErr(err, tc.wantErr) || (err == nil && fi.Mode()&fs.ModeSymlink == 0) {
			t.Errorf("Lstat(%q) = %v, %v; want a symlink or %v", tc.link, fi, err, tc.wantErr)
		}
	}
}

// TestSFTPWriteConfined: nothing the client does changes the directory
// next to the inbox, through "..", absolute paths or planted symlinks,
// whether at blob names (os.Root refuses them) or at others (refused
// outright).
func TestSFTPWriteConfined(t *testing.T) {
	env := startSFTP(t, 0)
	env.plant(t)
	c := env.c
	when := time.Unix(0, 0)
	ops := map[string]func() error{
		"create ../outside/new":    func() error { return put(c, "../outside/new", []byte("x")) },
		"create absolute":          func() error { return put(c, env.outside+"/new", []byte("x")) },
		"create in abs-dir":        func() error { return put(c, "abs-dir/new", []byte("x")) },
		"create a blob in abs-dir": func() error { return put(c, "abs-dir/"+path.Base(blobName(9)), []byte("x")) },
		"create in rel-dir":        func() error { return put(c, "rel-dir/new", []byte("x")) },
		"create through up":        func() error { return put(c, "up"+env.outside+"/new", []byte("x")) },
		"create through a part":    func() error { return put(c, bAbsDir+"/new", []byte("x")) },
		"write abs-file blob":      func() error { return put(c, bAbsFile, []byte("x")) },
		"write rel-file blob":      func() error { return put(c, bRelFile, []byte("x")) },
		"write up blob":            func() error { return put(c, bUp, []byte("x")) },
		"create dangling blob":     func() error { return put(c, bDangling, []byte("x")) },
		"write abs-dir part":       func() error { return put(c, bAbsDir, []byte("x")) },
		"overwrite in rel-dir":     func() error { return put(c, "rel-dir/secret", []byte("x")) },
		"mkdir in abs-dir":         func() error { return c.Mkdir("abs-dir/sub") },
		"mkdir through a part":     func() error { return c.Mkdir(bAbsDir + "/blobs") },
		"mkdir absolute":           func() error { return c.Mkdir(env.outside + "/blobs") },
		"remove in rel-dir":        func() error { return c.Remove("rel-dir/secret") },
		"remove through a part":    func() error { return c.Remove(bAbsDir + "/secret") },
		"truncate abs-file blob":   func() error { return c.Truncate(bAbsFile, 0) },
		"truncate in rel-dir":      func() error { return c.Truncate("rel-dir/secret", 0) },
		"chmod abs-file blob":      func() error { return c.Chmod(bAbsFile, 0o777) },
		"chmod abs-dir part":       func() error { return c.Chmod(bAbsDir, 0o777) },
		"chmod abs-dir":            func() error { return c.Chmod("abs-dir", 0o777) },
		"chtimes rel-file blob":    func() error { return c.Chtimes(bRelFile, when, when) },
		"rename into rel-dir":      func() error { return c.PosixRename(bFile, "rel-dir/"+path.Base(bFile)) },
		"rename out of rel-dir":    func() error { return c.PosixRename("rel-dir/secret", blobName(9)) },
		"rename a part into abs-dir": func() error {
			return c.PosixRename(bAbsDir+"/"+path.Base(partName(9)), bAbsDir+"/"+path.Base(blobName(9)))
		},
		"chmod the inbox itself": func() error { return c.Chmod("/", 0o777) },
		"chmod blobs":            func() error { return c.Chmod("blobs", 0o755) },
	}
	before := snapshot(t, env.outside)
	inbox := snapshot(t, env.inbox)
	for name, op := range ops {
		if err := op(); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s: %v, want permission denied", name, err)
		}
	}
	if diff := cmp.Diff(before, snapshot(t, env.outside)); diff != "" {
		t.Errorf("outside changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(inbox, snapshot(t, env.inbox)); diff != "" {
		t.Errorf("inbox changed (-before +after):\n%s", diff)
	}
}

func TestSFTPRefused(t *testing.T) {
	env := startSFTP(t, 0)
	env.plant(t)
	c := env.c
	ln := blobName(9)
	for _, tc := range []struct {
		name string
		op   func() error
	}{
		{"symlink inside", func() error { return c.Symlink(path.Base(bFile), ln) }},
		{"symlink outside", func() error { return c.Symlink(env.outside+"/secret", ln) }},
		{"symlink at another name", func() error { return c.Symlink("/etc", "ln") }},
		{"hard link", func() error { return c.Link(bFile, ln) }},
		{"hard link at another name", func() error { return c.Link(bFile, "ln") }},
		{"hard link outside", func() error { return c.Link(bAbsFile, ln) }},
		{"chown", func() error { return c.Chown(bFile, 0, 0) }},
		{"readlink", func() error { _, err := c.ReadLink(bAbsFile); return err }},
		{"readlink inside", func() error { _, err := c.ReadLink(bInside); return err }},
		{"readlink another name", func() error { _, err := c.ReadLink("abs-dir"); return err }},
	} {
		if err := tc.op(); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s: %v, want permission denied", tc.name, err)
		}
		for _, name := range []string{ln, "ln"} {
			if _, err := os.Lstat(filepath.Join(env.inbox, name)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s: created %s", tc.name, name)
			}
		}
	}
	var se *sftp.StatusError
	if _, err := c.StatVFS("/"); !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxOpUnsupported {
		t.Errorf("statvfs: %v, want op unsupported", err)
	}
}
