package gate

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pkg/sftp"
)

func TestSFTPReadConfined(t *testing.T) {
	env := startSFTP(t, 0)
	env.plant(t)
	for _, tc := range []struct {
		path    string
		want    string // content, if the read succeeds
		wantErr error
	}{
		{"/file", "inside", nil},
		{"/a/../file", "inside", nil},
		{"../../file", "inside", nil},
		{"inside", "inside", nil}, // a symlink that stays inside
		{"../outside/secret", "", fs.ErrNotExist},
		{env.outside + "/secret", "", fs.ErrNotExist},
		{"abs-dir/secret", "", fs.ErrPermission},
		{"rel-dir/secret", "", fs.ErrPermission},
		{"abs-file", "", fs.ErrPermission},
		{"rel-file", "", fs.ErrPermission},
		{"up" + env.outside + "/secret", "", fs.ErrPermission},
		{"dir", "", errAny},
	} {
		got, err := get(env.c, tc.path)
		if !matchErr(err, tc.wantErr) || string(got) != tc.want {
			t.Errorf("read %q: %q, %v; want %q, %v", tc.path, got, err, tc.want, tc.wantErr)
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
			case fake && (err != nil || string(got) != "fake"):
				t.Errorf("read %q: %q, %v; want the inbox's etc/passwd", p, got, err)
			case !fake && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("read %q: %q, %v; want not-exist", p, got, err)
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
		{"../outside", fs.ErrNotExist},
		{env.outside, fs.ErrNotExist},
		{"/etc", fs.ErrNotExist},
		{"file", errAny},
	} {
		fis, err := env.c.ReadDir(tc.dir)
		if !matchErr(err, tc.wantErr) {
			t.Errorf("ReadDir(%q): %d entries, %v; want %v", tc.dir, len(fis), err, tc.wantErr)
		}
		if tc.wantErr == errAny {
			continue // a file: it can be stat'ed, not listed
		}
		if _, err := env.c.Stat(tc.dir); !matchErr(err, tc.wantErr) {
			t.Errorf("Stat(%q): %v, want %v", tc.dir, err, tc.wantErr)
		}
	}
	// Lstat describes a link that stays inside; one that leads out is
	// refused, since OpenSSH's sftp lists "link/" by lstat'ing it.
	for _, tc := range []struct {
		link    string
		wantErr error
	}{
		{"inside", nil},
		{"abs-dir", fs.ErrPermission},
		{"rel-file", fs.ErrPermission},
		{"up", fs.ErrPermission},
	} {
		fi, err := env.c.Lstat(tc.link)
		if !matchErr(err, tc.wantErr) || (err == nil && fi.Mode()&fs.ModeSymlink == 0) {
			t.Errorf("Lstat(%q) = %v, %v; want a symlink or %v", tc.link, fi, err, tc.wantErr)
		}
	}
}

// TestSFTPWriteConfined: nothing the client does changes the directory
// next to the inbox, through "..", absolute paths or planted symlinks.
func TestSFTPWriteConfined(t *testing.T) {
	env := startSFTP(t, 0)
	env.plant(t)
	c := env.c
	when := time.Unix(0, 0)
	ops := map[string]func() error{
		"create ../outside/new":  func() error { return put(c, "../outside/new", []byte("x")) },
		"create absolute":        func() error { return put(c, env.outside+"/new", []byte("x")) },
		"create in abs-dir":      func() error { return put(c, "abs-dir/new", []byte("x")) },
		"create in rel-dir":      func() error { return put(c, "rel-dir/new", []byte("x")) },
		"create through up":      func() error { return put(c, "up"+env.outside+"/new", []byte("x")) },
		"write abs-file":         func() error { return put(c, "abs-file", []byte("x")) },
		"write rel-file":         func() error { return put(c, "rel-file", []byte("x")) },
		"create dangling":        func() error { return put(c, "dangling", []byte("x")) },
		"overwrite in rel-dir":   func() error { return put(c, "rel-dir/secret", []byte("x")) },
		"mkdir in abs-dir":       func() error { return c.Mkdir("abs-dir/sub") },
		"remove in rel-dir":      func() error { return c.Remove("rel-dir/secret") },
		"truncate abs-file":      func() error { return c.Truncate("abs-file", 0) },
		"truncate in rel-dir":    func() error { return c.Truncate("rel-dir/secret", 0) },
		"chmod abs-file":         func() error { return c.Chmod("abs-file", 0o777) },
		"chmod abs-dir":          func() error { return c.Chmod("abs-dir", 0o777) },
		"chtimes rel-file":       func() error { return c.Chtimes("rel-file", when, when) },
		"rename into rel-dir":    func() error { return c.PosixRename("file", "rel-dir/file") },
		"rename out of rel-dir":  func() error { return c.PosixRename("rel-dir/secret", "stolen") },
		"chmod the inbox itself": func() error { return c.Chmod("/", 0o777) },
	}
	before := snapshot(t, env.outside)
	inboxMode := snapshot(t, env.inbox)[env.inbox]
	for name, op := range ops {
		if err := op(); err == nil {
			t.Errorf("%s: succeeded", name)
		}
	}
	if diff := cmp.Diff(before, snapshot(t, env.outside)); diff != "" {
		t.Errorf("outside changed (-before +after):\n%s", diff)
	}
	if got := snapshot(t, env.inbox)[env.inbox]; got != inboxMode {
		t.Errorf("inbox mode changed: %s, was %s", got, inboxMode)
	}
}

func TestSFTPRefused(t *testing.T) {
	env := startSFTP(t, 0)
	env.plant(t)
	c := env.c
	for _, tc := range []struct {
		name string
		op   func() error
	}{
		{"symlink inside", func() error { return c.Symlink("file", "ln") }},
		{"symlink outside", func() error { return c.Symlink(env.outside, "ln") }},
		{"hard link", func() error { return c.Link("file", "ln") }},
		{"hard link outside", func() error { return c.Link("abs-file", "ln") }},
		{"chown", func() error { return c.Chown("file", 0, 0) }},
		{"readlink", func() error { _, err := c.ReadLink("abs-dir"); return err }},
		{"readlink inside", func() error { _, err := c.ReadLink("inside"); return err }},
	} {
		if err := tc.op(); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s: %v, want permission denied", tc.name, err)
		}
		if _, err := os.Lstat(filepath.Join(env.inbox, "ln")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: created ln", tc.name)
		}
	}
	var se *sftp.StatusError
	if _, err := c.StatVFS("/"); !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxOpUnsupported {
		t.Errorf("statvfs: %v, want op unsupported", err)
	}
}
