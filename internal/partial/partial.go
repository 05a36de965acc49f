// Package partial lets a blob be read while it is still being written, so
// an image can flow on from a node that is still receiving it. A writer
// holds a shared lock on the file while it writes and publishes, in an
// extended attribute, how long the part of the file written without gaps
// is (uploads write at offsets, from several goroutines, so the file's
// size says nothing about gaps). A reader serves no further than that.
// Where extended attributes are not supported nothing is published, and
// readers wait for the whole file.
package partial

import (
	"errors"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

const attr = "user.moat.written"

// publishEvery is how far the written prefix must grow before it is
// published again: readers follow in steps of this.
const publishEvery = 1 << 20

// Publish records on f that its first n bytes are written.
func Publish(f *os.File, n int64) error {
	err := unix.Fsetxattr(int(f.Fd()), attr, []byte(strconv.FormatInt(n, 10)), 0)
	if err != nil {
		return &os.PathError{Op: "setxattr", Path: f.Name(), Err: err}
	}
	return nil
}

// Written returns how many leading bytes of f its writer published as
// written; ok is false if none did.
func Written(f *os.File) (n int64, ok bool) {
	buf := make([]byte, 24)
	sz, err := unix.Fgetxattr(int(f.Fd()), attr, buf)
	if err != nil || sz <= 0 {
		return 0, false
	}
	n, err = strconv.ParseInt(string(buf[:sz]), 10, 64)
	return n, err == nil && n >= 0
}

// Lock marks f as being written until it is closed. Writers do not wait
// for each other: an upload whose SSH session died unnoticed may hold the
// file open for hours. They need not: every writer of a blob writes the
// blob's own bytes at their own offsets.
func Lock(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_SH)
}

// Writing says whether a writer holds f's file (through another open of
// it) locked.
func Writing(f *os.File) bool {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true
	}
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
	}
	return false
}

// Tracker follows writes at offsets into f, from any goroutine, and
// publishes the written prefix as it grows.
type Tracker struct {
	mu        sync.Mutex
	f         *os.File
	prefix    int64           // [0, prefix) is written
	published int64           // what readers were last told
	ahead     map[int64]int64 // written ranges past prefix: start → end
}

// NewTracker follows f, whose first start bytes are already written.
func NewTracker(f *os.File, start int64) *Tracker {
	return &Tracker{f: f, prefix: start, published: -1, ahead: map[int64]int64{}}
}

// Wrote records that [off, off+n) is written.
func (t *Tracker) Wrote(off, n int64) {
	if n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	end := off + n
	if off > t.prefix {
		if end > t.ahead[off] {
			t.ahead[off] = end
		}
		return
	}
	t.prefix = max(t.prefix, end)
	// Ranges that now touch the prefix join it.
	for grown := true; grown; {
		grown = false
		for start, e := range t.ahead {
			if start <= t.prefix {
				t.prefix = max(t.prefix, e)
				delete(t.ahead, start)
				grown = true
			}
		}
	}
	if t.prefix-t.published >= publishEvery {
		t.publish()
	}
}

// Flush publishes the written prefix now (when the writer is done).
func (t *Tracker) Flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.publish()
}

func (t *Tracker) publish() {
	if t.prefix != t.published && Publish(t.f, t.prefix) == nil {
		t.published = t.prefix
	}
}
