package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"syscall"
)

// writeFile creates a regular file at name, replacing whatever is there.
func (u *unpacker) writeFile(hdr *tar.Header, name string, r io.Reader) error {
	if hdr.Mode&(modeSetuid|modeSetgid) != 0 {
		return refuse(hdr.Name, "setuid/setgid files are not allowed")
	}
	if _, err := u.makeWay(hdr.Name, name, false); err != nil {
		return err
	}
	f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return entryErr(hdr.Name, "create file", err)
	}
	err = u.fill(hdr, f, r)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = entryErr(hdr.Name, "close file", cerr)
	}
	if err != nil {
		return err
	}
	if err := u.root.Chtimes(name, timesOf(hdr).atime, hdr.ModTime); err != nil {
		return entryErr(hdr.Name, "set times", err)
	}
	return nil
}

// fill copies the content into f and sets its owner and mode. Chmod comes
// after creation so the umask has no say, and after chown, which may clear
// mode bits.
func (u *unpacker) fill(hdr *tar.Header, f *os.File, r io.Reader) error {
	if err := u.copyContent(hdr, f, r); err != nil {
		return err
	}
	if u.chown {
		if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
			return entryErr(hdr.Name, "chown", err)
		}
	}
	if err := f.Chmod(modeOf(hdr)); err != nil {
		return entryErr(hdr.Name, "chmod", err)
	}
	return nil
}

// copyContent copies the entry's content, counting what is really read
// against MaxBytes rather than trusting the header's size.
func (u *unpacker) copyContent(hdr *tar.Header, f *os.File, r io.Reader) error {
	left := u.opts.MaxBytes - u.stats.Bytes
	if hdr.Size > left {
		return refuse(hdr.Name, "layer content exceeds %d bytes", u.opts.MaxBytes)
	}
	limit := left
	if limit < math.MaxInt64 {
		limit++ // one byte more than allowed tells us the limit was crossed
	}
	n, err := io.Copy(f, io.LimitReader(r, limit))
	u.stats.Bytes += n
	if err != nil {
		return entryErr(hdr.Name, "write file", err)
	}
	if n > left {
		return refuse(hdr.Name, "layer content exceeds %d bytes", u.opts.MaxBytes)
	}
	return nil
}

// writeDir creates a directory at name, or updates the owner and mode of the
// directory already there. Its times are set last, in finishDirs.
func (u *unpacker) writeDir(hdr *tar.Header, name string) error {
	kept, err := u.makeWay(hdr.Name, name, true)
	if err != nil {
		return err
	}
	if !kept {
		if err := u.root.Mkdir(name, 0o700); err != nil {
			return entryErr(hdr.Name, "create directory", err)
		}
	}
	if err := u.setOwnerMode(hdr.Name, name, hdr.Uid, hdr.Gid, modeOf(hdr)); err != nil {
		return err
	}
	u.dirTimes[name] = dirTimes{times: timesOf(hdr), entry: u.stats.Entries}
	return nil
}

// writeSymlink creates a symlink verbatim. Its target may point anywhere,
// absolute targets included: os.Root never follows it out of the layer.
func (u *unpacker) writeSymlink(hdr *tar.Header, name string) error {
	if _, err := u.makeWay(hdr.Name, name, false); err != nil {
		return err
	}
	if err := u.root.Symlink(hdr.Linkname, name); err != nil {
		return entryErr(hdr.Name, "create symlink", err)
	}
	if u.chown {
		if err := u.root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
			return entryErr(hdr.Name, "chown", err)
		}
	}
	return u.symlinkTimes(hdr.Name, name, timesOf(hdr))
}

// writeLink creates a hardlink to a file already in the layer. The link
// shares its target's inode, so the header's owner, mode and times are not
// applied.
func (u *unpacker) writeLink(hdr *tar.Header, name string) error {
	target, err := cleanLinkname(hdr.Name, hdr.Linkname)
	if err != nil {
		return err
	}
	if target == name {
		return refuse(hdr.Name, "hardlink to itself")
	}
	if _, err := u.makeWay(hdr.Name, name, false); err != nil {
		return err
	}
	if err := u.root.Link(target, name); err != nil {
		return entryErr(hdr.Name, fmt.Sprintf("hardlink to %q", hdr.Linkname), err)
	}
	return nil
}

// makeWay creates name's missing parents and removes what is at name, unless
// keepDir is set and it is a directory; it reports whether it kept one.
// Removing never follows a symlink: the link itself goes.
func (u *unpacker) makeWay(entry, name string, keepDir bool) (kept bool, err error) {
	if err := u.mkdirAll(entry, path.Dir(name)); err != nil {
		return false, err
	}
	fi, err := u.root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, entryErr(entry, "inspect existing path", err)
	case fi.IsDir() && keepDir:
		return true, nil
	case fi.IsDir():
		err = u.root.RemoveAll(name)
	default:
		err = u.root.Remove(name)
	}
	if err != nil {
		return false, entryErr(entry, "replace existing path", err)
	}
	u.removed[name] = u.stats.Entries
	return false, nil
}

// mkdirAll creates dir and its missing parents as 0755 directories owned by
// 0:0, as other unpackers do for parents a layer does not list. An existing
// symlink counts as a parent: os.Root resolves it only if it stays inside.
func (u *unpacker) mkdirAll(entry, dir string) error {
	if dir == "." {
		return nil
	}
	fi, err := u.root.Lstat(dir)
	if err == nil {
		if fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 {
			return nil
		}
		return entryErr(entry, fmt.Sprintf("create parent %q", dir), syscall.ENOTDIR)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return entryErr(entry, fmt.Sprintf("inspect parent %q", dir), err)
	}
	if err := u.mkdirAll(entry, path.Dir(dir)); err != nil {
		return err
	}
	if err := u.root.Mkdir(dir, 0o700); err != nil {
		return entryErr(entry, fmt.Sprintf("create parent %q", dir), err)
	}
	return u.setOwnerMode(entry, dir, 0, 0, 0o755)
}
