package gate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pkg/sftp"

	"github.com/moatcloud/moat/internal/testcluster"
)

// sftpEnv is a live session: a real client on one end of a pipe, ServeSFTP
// on the other, an inbox, and a sibling directory the client must never
// reach.
type sftpEnv struct {
	c       *sftp.Client
	inbox   string
	outside string
	done    chan error // ServeSFTP's result
}

// startSFTP starts a session; its cleanup closes the client and checks
// that ServeSFTP returned nil.
func startSFTP(t *testing.T, maxUpload int64) *sftpEnv {
	t.Helper()
	env := newSFTPEnv(t, maxUpload)
	t.Cleanup(func() {
		env.c.Close()
		if err := env.wait(t); err != nil {
			t.Errorf("ServeSFTP: %v", err)
		}
	})
	return env
}

func newSFTPEnv(t *testing.T, maxUpload int64) *sftpEnv {
	t.Helper()
	dir := t.TempDir()
	env := &sftpEnv{
		inbox:   filepath.Join(dir, "inbox"),
		outside: filepath.Join(dir, "outside"),
		done:    make(chan error, 1),
	}
	mkdirs(t, env.inbox, env.outside)
	writeFile(t, filepath.Join(env.outside, "secret"), "secret")
	srv, cli := net.Pipe()
	go func() { env.done <- ServeSFTP(srv, env.inbox, maxUpload) }()
	c, err := sftp.NewClientPipe(cli, cli)
	if err != nil {
		t.Fatalf("sftp client: %v", err)
	}
	env.c = c
	return env
}

// wait returns ServeSFTP's result once the client has gone.
func (env *sftpEnv) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-env.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("ServeSFTP did not return after the client closed")
		return nil
	}
}

// blobName is the inbox name of test blob i, blobs/sha256-HEX; partName
// is that of its upload in progress. Only these names (and "." and
// "blobs") are open to the client.
func blobName(i int) string { return fmt.Sprintf("blobs/sha256-%064x", i) }
func partName(i int) string { return blobName(i) + ".part" }

// What plant puts at blob-shaped names, which the inbox accepts, so that
// only os.Root stands between these links and the outside.
var (
	bFile     = blobName(1) // a regular file, "inside"
	bAbsFile  = blobName(2) // -> <outside>/secret
	bRelFile  = blobName(3) // -> ../../outside/secret
	bDangling = blobName(4) // -> <outside>/new, which does not exist
	bUp       = blobName(5) // -> ../../(...)/..<outside>/secret
	bInside   = blobName(6) // -> sha256-<1>, a link that stays inside
	bAbsDir   = partName(7) // -> <outside>
)

// plant puts into the inbox what someone other than the client could have
// put there: symlinks out of it, absolute and relative, to a directory and
// to a file, at blob-shaped names and at other names, plus ordinary
// content and one symlink that stays inside.
func (env *sftpEnv) plant(t *testing.T) {
	t.Helper()
	mkdirs(t, filepath.Join(env.inbox, "dir"), filepath.Join(env.inbox, blobDir))
	writeFile(t, filepath.Join(env.inbox, "file"), "inside")
	writeFile(t, filepath.Join(env.inbox, "dir", "nested"), "nested")
	writeFile(t, filepath.Join(env.inbox, bFile), "inside")
	for name, target := range map[string]string{
		"abs-dir": env.outside,
		"rel-dir": "../outside",
		"up":      "../../../../../../..",
		bAbsFile:  filepath.Join(env.outside, "secret"),
		bRelFile:  "../../outside/secret",
		bDangling: filepath.Join(env.outside, "new"),
		bUp:       strings.Repeat("../", 32) + env.outside + "/secret",
		bInside:   path.Base(bFile),
		bAbsDir:   env.outside,
	} {
		if err := os.Symlink(target, filepath.Join(env.inbox, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// planted lists what plant creates, as a listing of "/" shows it, and
// plantedBlobs as a listing of "/blobs" does.
var (
	planted      = []string{"abs-dir", "blobs", "dir", "file", "rel-dir", "up"}
	plantedBlobs = []string{
		path.Base(bFile), path.Base(bAbsFile), path.Base(bRelFile), path.Base(bDangling),
		path.Base(bUp), path.Base(bInside), path.Base(bAbsDir),
	}
)

// linkBlobs makes the inbox's blobs directory a symlink to the outside
// (by target, absolute or relative), where blob 1 and its upload wait:
// whatever the client does to blobs/... must not reach them.
func (env *sftpEnv) linkBlobs(t *testing.T, target string) {
	t.Helper()
	writeFile(t, filepath.Join(env.outside, path.Base(bFile)), "secret blob")
	writeFile(t, filepath.Join(env.outside, path.Base(partName(1))), "secret part")
	if err := os.Symlink(target, filepath.Join(env.inbox, blobDir)); err != nil {
		t.Fatal(err)
	}
}

// blobsLinks are the targets linkBlobs is tried with.
func (env *sftpEnv) blobsLinks() []string { return []string{env.outside, "../outside"} }

// snapshot is what must not change under dir.
func snapshot(t *testing.T, dir string) map[string]string { return testcluster.Snapshot(t, dir) }

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// put uploads content with the client.
func put(c *sftp.Client, name string, content []byte) error {
	f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	return errors.Join(err, f.Close())
}

// get downloads a file with the client.
func get(c *sftp.Client, name string) ([]byte, error) {
	f, err := c.Open(name)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	return b, errors.Join(err, f.Close())
}

func TestSFTPWriteReadBack(t *testing.T) {
	hex := strings.TrimPrefix(blobName(1), "blobs/sha256-")
	for _, tc := range []struct {
		name string
		path string // as the client names it
		file string // where it lands, relative to the inbox
		size int
	}{
		{"empty", "/" + blobName(1), blobName(1), 0},
		{"one byte", blobName(1), blobName(1), 1},
		{"many packets", "/" + partName(1), partName(1), 300 << 10},
		{"cleaned path", "/blobs/x/../sha256-" + hex, blobName(1), 10},
		{"dotdot stays inside", "../../" + partName(1), partName(1), 10},
		{"double slashes", "//blobs//sha256-" + hex, blobName(1), 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSFTP(t, 0)
			if err := env.c.Mkdir(blobDir); err != nil {
				t.Fatalf("mkdir blobs: %v", err)
			}
			want := bytes.Repeat([]byte("moat"), tc.size/4+1)[:tc.size]
			if err := put(env.c, tc.path, want); err != nil {
				t.Fatalf("put: %v", err)
			}
			got, err := get(env.c, tc.path)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("read back %d bytes, want %d", len(got), len(want))
			}
			fi, err := os.Stat(filepath.Join(env.inbox, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != 0o600 || fi.Size() != int64(tc.size) {
				t.Errorf("on disk: mode %v size %d, want -rw------- %d", fi.Mode(), fi.Size(), tc.size)
			}
			if fi, err := env.c.Stat(tc.path); err != nil || fi.Size() != int64(tc.size) {
				t.Errorf("stat: %v, %v; want size %d", fi, err, tc.size)
			}
		})
	}
}

// TestSFTPResume uploads a blob the way the master does: to its .part,
// resumed from where the last session stopped, then renamed.
func TestSFTPResume(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789"), 20000)
	for _, split := range []int{0, 1, len(want) / 2, len(want) - 1, len(want)} {
		env := startSFTP(t, 0)
		if err := env.c.MkdirAll(blobDir); err != nil {
			t.Fatalf("mkdir blobs: %v", err)
		}
		if err := put(env.c, partName(1), want[:split]); err != nil {
			t.Fatalf("first part: %v", err)
		}
		fi, err := env.c.Stat(partName(1))
		if err != nil || fi.Size() != int64(split) {
			t.Fatalf("stat the part: %v, %v; want size %d", fi, err, split)
		}
		f, err := env.c.OpenFile(partName(1), os.O_WRONLY|os.O_CREATE)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if _, err := f.Seek(fi.Size(), io.SeekStart); err != nil {
			t.Fatal(err)
		}
		_, err = f.Write(want[split:])
		if err := errors.Join(err, f.Close()); err != nil {
			t.Fatalf("rest: %v", err)
		}
		if err := env.c.PosixRename(partName(1), blobName(1)); err != nil {
			t.Fatalf("rename: %v", err)
		}
		got, err := os.ReadFile(filepath.Join(env.inbox, blobName(1)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("split at %d: got %d bytes (%v), want %d", split, len(got), err, len(want))
		}
		if _, err := os.Lstat(filepath.Join(env.inbox, partName(1))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("split at %d: the part is still there: %v", split, err)
		}
	}
}

func TestSFTPListRoot(t *testing.T) {
	env := startSFTP(t, 0)
	env.plant(t)
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"/", planted},
		{".", planted},
		{"", planted},
		{"/..", planted},
		{"../../..", planted},
		{"blobs", plantedBlobs},
		{"/blobs/", plantedBlobs},
		{"../blobs", plantedBlobs},
		{"dir/../blobs", plantedBlobs},
	} {
		fis, err := env.c.ReadDir(tc.dir)
		if err != nil {
			t.Fatalf("ReadDir(%q): %v", tc.dir, err)
		}
		var got []string
		for _, fi := range fis {
			got = append(got, fi.Name())
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tc.want))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ReadDir(%q) (-want +got):\n%s", tc.dir, diff)
		}
	}
	if wd, err := env.c.Getwd(); err != nil || wd != "/" {
		t.Errorf("Getwd = %q, %v; want /", wd, err)
	}
	if rp, err := env.c.RealPath("../a/../b/"); err != nil || rp != "/b" {
		t.Errorf("RealPath = %q, %v; want /b", rp, err)
	}
}

func TestSFTPUploadLimit(t *testing.T) {
	const limit = 1 << 20
	name := partName(1)
	for _, tc := range []struct {
		name   string
		upload func(c *sftp.Client) error
		ok     bool
	}{
		{"exactly the limit", func(c *sftp.Client) error {
			return put(c, name, make([]byte, limit))
		}, true},
		{"one byte over", func(c *sftp.Client) error {
			return put(c, name, make([]byte, limit+1))
		}, false},
		{"sparse past the limit", func(c *sftp.Client) error {
			f, err := c.Create(name)
			if err != nil {
				return err
			}
			_, err = f.WriteAt([]byte("x"), 2<<20)
			return errors.Join(err, f.Close())
		}, false},
		{"resumed past the limit", func(c *sftp.Client) error {
			if err := put(c, name, make([]byte, limit)); err != nil {
				return err
			}
			f, err := c.OpenFile(name, os.O_WRONLY)
			if err != nil {
				return err
			}
			_, err = f.WriteAt([]byte("x"), limit)
			return errors.Join(err, f.Close())
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSFTP(t, limit)
			mkdirs(t, filepath.Join(env.inbox, blobDir))
			err := tc.upload(env.c)
			if tc.ok {
				if err != nil {
					t.Fatalf("upload: %v", err)
				}
				if fi, err := os.Stat(filepath.Join(env.inbox, name)); err != nil || fi.Size() != limit {
					t.Errorf("on disk: %v, %v; want %d bytes", fi, err, limit)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "limit of 1048576 bytes") {
				t.Errorf("upload error %v, want one naming the limit", err)
			}
			if _, err := os.Stat(filepath.Join(env.inbox, name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("oversize upload left behind: %v", err)
			}
		})
	}
}

func TestSFTPPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "."},
		{"/", "."},
		{".", "."},
		{"..", "."},
		{"/a/../b", "b"},
		{"../../etc/shadow", "etc/shadow"},
		{"/etc/shadow", "etc/shadow"},
		{"a//b/./c/", "a/b/c"},
		{"a/b/../../..", "."},
		{"...", "..."},
		{"..foo/bar", "..foo/bar"},
	} {
		if got := inboxPath(tc.in); got != tc.want {
			t.Errorf("inboxPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSFTPPath: whatever the client sends, the name handed to os.Root is
// relative and has no ".." element.
func FuzzSFTPPath(f *testing.F) {
	for _, s := range []string{"", "/", "..", "../..", "/../x", "a/../../b", "..foo", "a/..", "//x//", "\x00", "a\\..\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rel := inboxPath(p)
		switch {
		case strings.HasPrefix(rel, "/"),
			rel == "..", strings.HasPrefix(rel, "../"),
			strings.Contains(rel, "/../"), strings.HasSuffix(rel, "/.."),
			!filepath.IsLocal(rel),
			inboxPath(rel) != rel:
			t.Errorf("inboxPath(%q) = %q", p, rel)
		}
	})
}
