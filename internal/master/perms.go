package master

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Private files of the master's state: whoever reads them holds the
// master's authority (its key) or learns the cluster's shape (its
// database).
var privateFiles = []string{MasterKeyFile, PeerKeyFile, DBFile, PoolTokenKeyFile}

// checkPrivate refuses to run on state others can read or write: the
// directory must be 0700 and the keys and the database 0600 (or
// stricter), all owned by this user.
func checkPrivate(dir string) error {
	if err := private(dir, true); err != nil {
		return err
	}
	for _, f := range privateFiles {
		if err := private(filepath.Join(dir, f), false); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

func private(path string, dir bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return err
		}
		return fmt.Errorf("check %s: %w", path, err)
	}
	return permProblem(path, fi.Mode(), owner(fi), os.Geteuid(), dir)
}

// permProblem says what is wrong with a private file's mode and owner, and
// how to fix it. Pure.
func permProblem(path string, mode fs.FileMode, uid, euid int, dir bool) error {
	want := fs.FileMode(0o600)
	if dir {
		want = 0o700
	}
	if mode.Perm()&0o077 != 0 {
		return fmt.Errorf("%s is mode %04o: others can reach the master's key and state; the master refuses to run until you chmod %o %s",
			path, mode.Perm(), want, path)
	}
	if uid >= 0 && uid != euid {
		return fmt.Errorf("%s belongs to uid %d, not to uid %d running the master: chown it", path, uid, euid)
	}
	return nil
}
