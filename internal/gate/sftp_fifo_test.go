//go:build unix

package gate

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSFTPPlantedFIFO: a FIFO planted in the inbox at a blob name, which
// the inbox's shape lets through, is refused at once instead of blocking
// the session in open(2).
func TestSFTPPlantedFIFO(t *testing.T) {
	env := startSFTP(t, 0)
	mkdirs(t, filepath.Join(env.inbox, blobDir))
	fifo := partName(1)
	if err := syscall.Mkfifo(filepath.Join(env.inbox, fifo), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Each operation must fail at once; a blocked open would hang here.
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := get(env.c, fifo); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("read: %v, want permission denied", err)
		}
		// Opened write-only with no reader, a FIFO fails in open(2).
		if err := put(env.c, fifo, []byte("x")); err == nil {
			t.Error("write succeeded")
		}
		if f, err := env.c.OpenFile(fifo, os.O_RDWR); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("open read-write: %v, want permission denied", err)
			if err == nil {
				f.Close()
			}
		}
		if err := env.c.Truncate(fifo, 0); err == nil {
			t.Error("truncate succeeded")
		}
		if _, err := env.c.ReadDir(fifo); err == nil {
			t.Error("list succeeded")
		}
		if err := env.c.PosixRename(fifo, blobName(1)); err != nil {
			t.Errorf("rename: %v", err) // a rename does not open it
		}
		if _, err := get(env.c, blobName(1)); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("read after the rename: %v, want permission denied", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a planted FIFO blocked the session")
	}
	if fi, err := os.Lstat(filepath.Join(env.inbox, blobName(1))); err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
		t.Errorf("fifo changed: %v %v", fi, err)
	}
}
