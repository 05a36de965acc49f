package layer

import (
	"archive/tar"
	"io/fs"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// Mode bits as tar headers carry them.
const (
	modeSetuid = 0o4000
	modeSetgid = 0o2000
)

type times struct {
	atime, mtime time.Time
}

func timesOf(hdr *tar.Header) times {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	return times{atime: atime, mtime: hdr.ModTime}
}

// modeOf returns the header's permission bits, sticky bit included, exactly
// as written: no umask applies to them.
func modeOf(hdr *tar.Header) fs.FileMode {
	return hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid)
}

// setOwnerMode sets owner and mode of the directory at name.
func (u *unpacker) setOwnerMode(entry, name string, uid, gid int, mode fs.FileMode) error {
	if u.chown {
		if err := u.root.Lchown(name, uid, gid); err != nil {
			return entryErr(entry, "chown", err)
		}
	}
	if err := u.root.Chmod(name, mode); err != nil {
		return entryErr(entry, "chmod", err)
	}
	return nil
}

// symlinkTimes sets a symlink's own times; os.Root has no Lchtimes.
func (u *unpacker) symlinkTimes(entry, name string, t times) error {
	dir, base := splitName(name)
	d, err := u.openDir(entry, dir)
	if err != nil {
		return err
	}
	defer d.Close()
	ts := []unix.Timespec{timespec(t.atime), timespec(t.mtime)}
	err = withFd(d, func(fd int) error {
		return unix.UtimesNanoAt(fd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return entryErr(entry, "set symlink times", err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// dirTimes are the times of a directory entry, and its number.
type dirTimes struct {
	times
	entry int
}

// finishDirs sets directory times once nothing more is written into them,
// skipping directories that a later entry removed (or whose parents it
// removed); a directory at that path now is not the one the entry made.
func (u *unpacker) finishDirs() error {
	for name, t := range u.dirTimes {
		if u.removedAfter(name, t.entry) {
			continue
		}
		if err := u.root.Chtimes(name, t.atime, t.mtime); err != nil {
			return entryErr(name, "set directory times", err)
		}
	}
	return nil
}

// removedAfter reports whether name or one of its parents was removed by an
// entry after the given one. It looks at each parent once: a layer that
// replaces many directories cannot make this quadratic.
func (u *unpacker) removedAfter(name string, entry int) bool {
	for ; name != "."; name = path.Dir(name) {
		if u.removed[name] > entry {
			return true
		}
	}
	return false
}
