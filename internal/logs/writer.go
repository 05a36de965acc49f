package logs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// currentName is the file being written; rotated files get ".1", ".2", ...
const currentName = "container.log"

// logPath names file i in dir: 0 is the current file, 1 the newest rotated.
func logPath(dir string, i int) string {
	if i == 0 {
		return filepath.Join(dir, currentName)
	}
	return filepath.Join(dir, currentName+"."+strconv.Itoa(i))
}

// Writer appends records to container.log in a directory and rotates it when
// it would grow past the size cap. It is safe for concurrent use; each record
// goes out in a single write call, so records never interleave.
type Writer struct {
	// Now is the clock records are stamped with, replaceable in tests. Set it
	// before the first write.
	Now func() time.Time

	dir      string
	maxSize  int64
	maxFiles int

	mu   sync.Mutex
	f    *os.File // nil once closed
	size int64
	buf  []byte
}

// NewWriter opens dir/container.log for appending, creating dir and the file
// as needed. maxSize and maxFiles of 0 (or less) mean DefaultMaxSize and
// DefaultMaxFiles; maxFiles counts the current file.
func NewWriter(dir string, maxSize int64, maxFiles int) (*Writer, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	if err := prune(dir, maxFiles); err != nil {
		return nil, err
	}
	w := &Writer{Now: time.Now, dir: dir, maxSize: maxSize, maxFiles: maxFiles}
	f, size, err := openAppend(logPath(dir, 0))
	if err != nil {
		return nil, err
	}
	w.f, w.size = f, size
	return w, nil
}

// prune removes rotated files beyond maxFiles, left by a writer that was
// allowed more.
func prune(dir string, maxFiles int) error {
	idx, err := rotatedIndexes(dir)
	if err != nil {
		return err
	}
	for _, k := range idx {
		if k < maxFiles {
			continue
		}
		if err := os.Remove(logPath(dir, k)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("prune old log: %w", err)
		}
	}
	return nil
}

// openAppend opens path for appending. If a previous writer died mid-record
// the file does not end in a newline; one is added so that the torn record
// stays a line of its own (readers skip it) rather than swallowing the next.
func openAppend(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, 0, fmt.Errorf("open log: %w", err)
	}
	size, err := terminate(f, path)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, size, nil
}

// terminate returns the size of the file open for appending at path, first
// adding a newline if the file is not empty and lacks a final one.
func terminate(f *os.File, path string) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat log: %w", err)
	}
	if fi.Size() == 0 {
		return 0, nil
	}
	r, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("check log end: %w", err)
	}
	defer r.Close()
	last := make([]byte, 1)
	if _, err := r.ReadAt(last, fi.Size()-1); err != nil {
		return 0, fmt.Errorf("check log end: %w", err)
	}
	if last[0] == '\n' {
		return fi.Size(), nil
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		return 0, fmt.Errorf("terminate torn record: %w", err)
	}
	return fi.Size() + 1, nil
}

// Stream returns a writer for "stdout" or "stderr" that splits what is
// written into records. Close it to flush a final line that has no newline;
// closing a stream does not close w. Writes to any other stream name fail.
func (w *Writer) Stream(name string) io.WriteCloser {
	return &stream{w: w, name: name}
}

// Close closes the current file. Close streams first: a partial line still
// buffered in a stream is lost, and later writes fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("close log: %w", err)
	}
	return nil
}

// record writes one record, rotating first if it would not fit.
func (w *Writer) record(stream string, partial bool, content []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return fmt.Errorf("write log: %w", os.ErrClosed)
	}
	w.buf = appendRecord(w.buf[:0], w.Now(), stream, partial, content)
	if w.size > 0 && w.size+int64(len(w.buf)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	return nil
}

// rotate shifts container.log.(i) to .(i+1), dropping the oldest, moves
// container.log to .1 and starts a fresh container.log. With maxFiles 1 the
// current file is simply replaced. If the fresh file cannot be created the
// record fails and the next one tries again, container.log being absent.
func (w *Writer) rotate() error {
	for i := w.maxFiles - 2; i >= 1; i-- {
		err := os.Rename(logPath(w.dir, i), logPath(w.dir, i+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log: %w", err)
		}
	}
	cur := logPath(w.dir, 0)
	var err error
	if w.maxFiles > 1 {
		err = os.Rename(cur, logPath(w.dir, 1))
	} else {
		err = os.Remove(cur)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate log: %w", err)
	}
	f, err := os.OpenFile(cur, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	w.f.Close()
	w.f, w.size = f, 0
	return nil
}
