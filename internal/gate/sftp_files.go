package gate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"

	"github.com/pkg/sftp"

	"github.com/moatcloud/moat/internal/partial"
)

// Fileread opens a regular file in the inbox for reading.
func (in *inbox) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	name := inboxPath(r.Filepath)
	if err := allow("read", name, kindBlob, kindPart); err != nil {
		return nil, in.wire(err)
	}
	f, err := in.open(name, os.O_RDONLY, false)
	if err != nil {
		return nil, in.wire(err)
	}
	return f, nil
}

// Filewrite opens a file in the inbox for writing, created 0600.
func (in *inbox) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	u, err := in.upload(r)
	if err != nil {
		return nil, in.wire(err)
	}
	return u, nil
}

// OpenFile is Filewrite for a client that opens a file to read and write.
func (in *inbox) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	u, err := in.upload(r)
	if err != nil {
		return nil, in.wire(err)
	}
	return u, nil
}

func (in *inbox) upload(r *sftp.Request) (*upload, error) {
	pf := r.Pflags()
	flag := os.O_WRONLY
	if pf.Read {
		flag = os.O_RDWR
	}
	// pf.Append is ignored: the client sends offsets, and O_APPEND would
	// make the kernel ignore them.
	if pf.Creat {
		flag |= os.O_CREATE
	}
	if pf.Trunc {
		flag |= os.O_TRUNC
	}
	if pf.Excl {
		flag |= os.O_EXCL
	}
	name := inboxPath(r.Filepath)
	if err := allow("write", name, kindBlob, kindPart); err != nil {
		return nil, err
	}
	f, err := in.open(name, flag, false)
	if err != nil {
		return nil, err
	}
	// Peers may read the upload while it arrives (see package partial):
	// as far as it is written without gaps, which for a resumed upload is
	// what the last session had written so.
	partial.Lock(f)
	var start int64
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		if w, ok := partial.Written(f); ok {
			start = min(w, fi.Size())
		}
	}
	written := partial.NewTracker(f, start)
	written.Flush() // what an earlier writer published no longer holds
	return &upload{in: in, name: name, f: f, written: written}, nil
}

// open opens name in the inbox and checks that it is a regular file (or a
// directory, if dir). O_NONBLOCK keeps a FIFO planted in the inbox from
// blocking the session in open; it has no effect on regular files.
func (in *inbox) open(name string, flag int, dir bool) (*os.File, error) {
	f, err := in.root.OpenFile(name, flag|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() != dir {
		err = syscall.EISDIR
		if dir {
			err = syscall.ENOTDIR
		}
	}
	if err == nil && !dir && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: %w", fi.Mode().Type(), errRefused)
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return f, nil
}

// upload is a file open for writing. No write may reach past the inbox's
// limit: the first that would is refused and the file is emptied and
// removed, since a bad upload is discarded whole.
type upload struct {
	in   *inbox
	name string

	mu      sync.RWMutex // held for reading by I/O, for writing to close
	f       *os.File
	err     error // why f is closed: the upload was discarded, or closed
	written *partial.Tracker
}

// WriteAt writes p at off unless that would take the file past the limit.
// pkg/sftp calls it from several goroutines at once.
func (u *upload) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > u.in.max-int64(len(p)) {
		return 0, u.discard()
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.err != nil {
		return 0, u.err
	}
	n, err := u.f.WriteAt(p, off)
	u.written.Wrote(off, int64(n))
	return n, err
}

// ReadAt reads from the file, for clients that opened it read-write.
func (u *upload) ReadAt(p []byte, off int64) (int, error) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.err != nil {
		return 0, u.err
	}
	return u.f.ReadAt(p, off)
}

// Close closes the file; after a discard it reports why.
func (u *upload) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return u.err
	}
	u.err = fmt.Errorf("upload %q: %w", u.name, os.ErrClosed)
	u.written.Flush()
	return u.f.Close()
}

// discard empties, removes and closes the file, and returns the error every
// later write, read and close reports.
func (u *upload) discard() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return u.err
	}
	errs := []error{
		fmt.Errorf("upload %q: larger than the limit of %d bytes, discarded", u.name, u.in.max),
		// Truncate frees the space even if the client renamed the file.
		u.f.Truncate(0),
	}
	// The name is removed only if it is still this file.
	fi, err := u.f.Stat()
	if cur, lerr := u.in.root.Lstat(u.name); err == nil && lerr == nil && os.SameFile(fi, cur) {
		err = u.in.root.Remove(u.name)
	}
	u.err = errors.Join(append(errs, err, u.f.Close())...)
	return u.err
}
