package layer

import (
	"errors"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// opaqueXattr marks an overlayfs directory whose lower contents are hidden.
const opaqueXattr = "trusted.overlay.opaque"

// whiteout turns an OCI whiteout entry into its overlayfs form.
func (u *unpacker) whiteout(entry string, kind whKind, dir, hidden string) error {
	switch kind {
	case whSkip:
		return nil
	case whDir:
		return u.opaque(entry, dir)
	}
	if hidden == "" || hidden == "." || hidden == ".." {
		return refuse(entry, "whiteout names no file")
	}
	return u.hide(entry, dir, hidden)
}

// hide creates the overlayfs whiteout for dir/hidden: a character device
// 0:0. If this layer already has an entry there, it stays: a whiteout only
// applies to lower layers.
func (u *unpacker) hide(entry, dir, hidden string) error {
	if err := u.mkdirAll(entry, dir); err != nil {
		return err
	}
	d, err := u.openDir(entry, dir)
	if err != nil {
		return err
	}
	defer d.Close()
	err = withFd(d, func(fd int) error {
		var st unix.Stat_t
		err := unix.Fstatat(fd, hidden, &st, unix.AT_SYMLINK_NOFOLLOW)
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
		return unix.Mknodat(fd, hidden, unix.S_IFCHR, 0)
	})
	if err != nil {
		return entryErr(entry, "create whiteout", err)
	}
	return nil
}

// opaque marks dir so overlayfs hides the lower layers' contents of it.
func (u *unpacker) opaque(entry, dir string) error {
	if err := u.mkdirAll(entry, dir); err != nil {
		return err
	}
	d, err := u.openDir(entry, dir)
	if err != nil {
		return err
	}
	defer d.Close()
	err = withFd(d, func(fd int) error {
		return unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0)
	})
	if err != nil {
		return entryErr(entry, "mark directory opaque", err)
	}
	return nil
}

// openDir opens a directory through the root, for the *at calls os.Root
// does not offer.
func (u *unpacker) openDir(entry, dir string) (*os.File, error) {
	d, err := u.root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, entryErr(entry, "open directory", err)
	}
	return d, nil
}

// splitName splits a clean name into its parent directory and last element.
func splitName(name string) (dir, base string) {
	return path.Dir(name), path.Base(name)
}

// withFd runs fn with f's descriptor, keeping f alive and in its mode.
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	return opErr
}
