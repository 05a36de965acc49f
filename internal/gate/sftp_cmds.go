package gate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/pkg/sftp"
)

// Filecmd runs the commands that change the inbox without a handle.
func (in *inbox) Filecmd(r *sftp.Request) error {
	return in.wire(in.cmd(r))
}

// PosixRename renames a finished upload, replacing a blob of that name.
func (in *inbox) PosixRename(r *sftp.Request) error {
	oldname, newname := inboxPath(r.Filepath), inboxPath(r.Target)
	if err := allowRename(oldname, newname); err != nil {
		return in.wire(err)
	}
	return in.wire(in.root.Rename(oldname, newname))
}

func (in *inbox) cmd(r *sftp.Request) error {
	name := inboxPath(r.Filepath)
	switch r.Method {
	case "Setstat":
		// Modes, owners, times and sizes are the node's: an upload is
		// written and renamed, nothing else.
		return fmt.Errorf("setstat %q: %w", name, errRefused)
	case "Rename":
		if err := allowRename(name, inboxPath(r.Target)); err != nil {
			return err
		}
		return in.rename(name, inboxPath(r.Target))
	case "Mkdir":
		if err := allow("mkdir", name, kindDir); err != nil {
			return err
		}
		return in.root.Mkdir(name, 0o700)
	case "Rmdir":
		return fmt.Errorf("rmdir %q: %w", name, errRefused)
	case "Remove":
		if err := allow("remove", name, kindBlob, kindPart); err != nil {
			return err
		}
		return in.remove(name, false)
	case "Symlink", "Link":
		// For both, Target is the new link (Filepath is a symlink's text).
		return fmt.Errorf("%s %q: %w", strings.ToLower(r.Method), r.Target, errRefused)
	}
	return fmt.Errorf("%s %q: %w", r.Method, r.Filepath, errors.ErrUnsupported)
}

// rename is SFTP's plain rename, which must not replace newname.
func (in *inbox) rename(oldname, newname string) error {
	_, err := in.root.Lstat(newname)
	switch {
	case err == nil:
		return &fs.PathError{Op: "rename", Path: newname, Err: fs.ErrExist}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return in.root.Rename(oldname, newname)
}

// remove removes a file (or a symlink, not its target), or with dir an
// empty directory.
func (in *inbox) remove(name string, dir bool) error {
	fi, err := in.root.Lstat(name)
	if err != nil {
		return err
	}
	switch {
	case dir && !fi.IsDir():
		return &fs.PathError{Op: "rmdir", Path: name, Err: syscall.ENOTDIR}
	case !dir && fi.IsDir():
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.EISDIR}
	}
	return in.root.Remove(name)
}

// Filelist answers List (opendir) and Stat; Readlink is refused.
func (in *inbox) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	name := inboxPath(r.Filepath)
	switch r.Method {
	case "List":
		if err := allow("list", name, kindRoot, kindDir); err != nil {
			return nil, in.wire(err)
		}
		f, err := in.open(name, os.O_RDONLY, true)
		if err != nil {
			return nil, in.wire(err)
		}
		return dirLister{f}, nil
	case "Stat":
		if err := allow("stat", name, kindRoot, kindDir, kindBlob, kindPart); err != nil {
			return nil, in.wire(err)
		}
		return in.stat(in.root.Stat(name))
	case "Readlink":
		_, err := in.Readlink(r.Filepath)
		return nil, err
	}
	return nil, in.wire(fmt.Errorf("%s %q: %w", r.Method, r.Filepath, errors.ErrUnsupported))
}

// Lstat is Stat without following a final symlink, except that a symlink
// leading out of the inbox is refused: OpenSSH's sftp lists "link/" by
// lstat'ing it, and pkg/sftp drops the trailing slash that would make
// lstat follow the link. Such a link still shows in its directory's
// listing, and can be removed.
func (in *inbox) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	name := inboxPath(r.Filepath)
	if err := allow("stat", name, kindRoot, kindDir, kindBlob, kindPart); err != nil {
		return nil, in.wire(err)
	}
	fi, err := in.root.Lstat(name)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if _, serr := in.root.Stat(name); in.escapes != nil && errors.Is(serr, in.escapes) {
			return nil, in.wire(serr)
		}
	}
	return in.stat(fi, err)
}

func (in *inbox) stat(fi fs.FileInfo, err error) (sftp.ListerAt, error) {
	if err != nil {
		return nil, in.wire(err)
	}
	return fileLister{fi}, nil
}

// Readlink is refused: the client cannot create symlinks, and the target
// of one planted by someone else may name a path outside the inbox.
func (in *inbox) Readlink(p string) (string, error) {
	return "", in.wire(fmt.Errorf("readlink %q: %w", p, errRefused))
}

// RealPath shows the client the path as seen from the inbox root. It does
// not follow symlinks.
func (in *inbox) RealPath(p string) (string, error) {
	return path.Clean("/" + p), nil
}

// dirLister reads a directory a batch at a time. Entries are lstat'ed
// relative to the open directory, so they stay inside the inbox.
type dirLister struct{ f *os.File }

func (d dirLister) ListAt(buf []fs.FileInfo, _ int64) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	fis, err := d.f.Readdir(len(buf))
	return copy(buf, fis), err
}

func (d dirLister) Close() error { return d.f.Close() }

// fileLister lists the one file a Stat or Lstat found.
type fileLister []fs.FileInfo

func (l fileLister) ListAt(buf []fs.FileInfo, off int64) (int, error) {
	if off < 0 || off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(buf, l[off:])
	if off+int64(n) == int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}
