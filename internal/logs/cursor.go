package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// cursor reads records from the log files of a directory in order, moving
// from each file to the one written after it however far rotation has moved
// either. It never rereads a file, so records are neither lost nor repeated
// as long as it keeps ahead of the oldest file falling off.
type cursor struct {
	dir  string
	f    *os.File // nil until the first file is opened
	buf  []byte   // bytes read from f not yet consumed
	tmp  []byte   // read buffer
	skip bool     // discarding an overlong line up to its newline
}

// maxRetries bounds the immediate retries when a rotation races a lookup.
const maxRetries = 1000

// catchUp emits every complete record up to the end of container.log. It
// stops short, without error, where the next file is not there yet (no file
// at all, or a rotation half done); calling it again later carries on.
func (c *cursor) catchUp(ctx context.Context, emit func(Entry) error) error {
	for retries := 0; ; {
		if c.f == nil {
			f, err := openOldest(c.dir)
			if err != nil || f == nil {
				return err
			}
			c.f = f
		}
		if err := c.drain(ctx, emit); err != nil {
			return err
		}
		head, err := sameFile(c.f, logPath(c.dir, 0))
		if err != nil || head {
			return err
		}
		// Rotated away: nothing more is written to f, so after one more
		// drain every record in it has been seen.
		if err := c.drain(ctx, emit); err != nil {
			return err
		}
		next, retry, err := c.findNext()
		switch {
		case err != nil:
			return err
		case next != nil:
			c.f.Close()
			c.f, c.buf, c.skip = next, c.buf[:0], false
			retries = 0
		case !retry:
			return nil
		default:
			if retries++; retries > maxRetries {
				return nil
			}
		}
	}
}

// close releases the open file.
func (c *cursor) close() {
	if c.f != nil {
		c.f.Close()
	}
}

// findNext opens the file written after f. A nil file with retry set means
// a rotation raced the lookup; without retry, the next file does not exist yet.
func (c *cursor) findNext() (next *os.File, retry bool, err error) {
	fi, err := c.f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("read logs: %w", err)
	}
	idx, err := rotatedIndexes(c.dir)
	if err != nil {
		return nil, false, err
	}
	for _, k := range idx { // ascending: rotation only moves f upwards
		if st, err := os.Stat(logPath(c.dir, k)); err == nil && os.SameFile(st, fi) {
			return openAfter(c.dir, k, fi)
		}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 0 {
		return nil, true, nil // still linked: moved while we looked
	}
	// f fell off the end, so the oldest file left is the one after it.
	f, err := openOldest(c.dir)
	return f, false, err
}

// openAfter opens the file after the one at index k, which is fi, and checks
// that no rotation moved fi meanwhile.
func openAfter(dir string, k int, fi os.FileInfo) (*os.File, bool, error) {
	f, err := os.Open(logPath(dir, k-1))
	if errors.Is(err, os.ErrNotExist) {
		return nil, k > 1, nil // k-1 is between renames, or .log not yet created
	}
	if err != nil {
		return nil, false, fmt.Errorf("read logs: %w", err)
	}
	if st, err := os.Stat(logPath(dir, k)); err != nil || !os.SameFile(st, fi) {
		f.Close()
		return nil, true, nil
	}
	return f, false, nil
}

// sameFile reports whether path is the file f has open.
func sameFile(f *os.File, path string) (bool, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read logs: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("read logs: %w", err)
	}
	return os.SameFile(st, fi), nil
}

// drain reads f to its end, emitting each complete, well-formed record and
// keeping an incomplete last line for the next call.
func (c *cursor) drain(ctx context.Context, emit func(Entry) error) error {
	if c.tmp == nil {
		c.tmp = make([]byte, 64<<10)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := c.f.Read(c.tmp)
		c.buf = append(c.buf, c.tmp[:n]...)
		if perr := c.lines(emit); perr != nil {
			return perr
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read logs: %w", err)
		}
	}
}

// lines emits the complete lines in c.buf and keeps the rest. A line too
// long to be a record is dropped without being buffered whole.
func (c *cursor) lines(emit func(Entry) error) error {
	rest := c.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := rest[:i]
		rest = rest[i+1:]
		if c.skip {
			c.skip = false
			continue
		}
		e, err := ParseLine(line)
		if err != nil {
			continue // a torn or foreign line; the rest of the log is still good
		}
		if err := emit(e); err != nil {
			return err
		}
	}
	if len(rest) > maxRecord {
		rest, c.skip = rest[:0], true
	}
	c.buf = c.buf[:copy(c.buf, rest)]
	return nil
}
