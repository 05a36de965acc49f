package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/metrics/rrd"
)

// A table is one entity's archive file, mapped MAP_SHARED: its bytes are
// the file's bytes, so an Add writes a few cells in place and the kernel
// writes the dirty pages back. Layout, little-endian:
//
//	header (one page, 4096 bytes)
//	  0  magic "MOATARC1"
//	  8  version uint16, kind uint8, fields uint8, archives uint8, 3 unused
//	  16 newest sample time, int64 ns (0: never written)
//	  24 archives × (step int64 ns, rows uint32, 4 unused, last step int64)   (24 each, at most 16)
//	  416 sources × (key hash uint64, newest sample int64 ns)                  (16 each, 64)
//	then per archive, rows × fields × cell
//	  cell: avg, min, max float32, n uint16                                    (14 bytes)
//
// A cell with n = 0 is unknown, so a file made sparse at its full size by
// truncate is all unknown and takes no disk until written. A row's step is
// implied by the archive's last step: slot k mod rows holds step k for
// last-rows < k <= last.
const (
	magic       = "MOATARC1"
	version     = 1
	headerSize  = 4096
	archOff     = 24
	archSize    = 24
	maxArchives = 16
	srcOff      = archOff + maxArchives*archSize
	srcSize     = 16
	maxSources  = 64
	cellSize    = 14
	maxFields   = 64
)

// errCorrupt is wrapped by every error about a file's header.
var errCorrupt = errors.New("archive file corrupt")

// header is the decoded fixed part of a file's first page.
type header struct {
	kind   byte
	fields int
	spec   rrd.Spec
}

// size is the file length for this header.
func (h header) size() int64 {
	n := int64(headerSize)
	for _, a := range h.spec {
		n += int64(a.Rows) * int64(h.fields) * cellSize
	}
	return n
}

func (h header) encode() []byte {
	b := make([]byte, headerSize)
	copy(b, magic)
	binary.LittleEndian.PutUint16(b[8:], version)
	b[10], b[11], b[12] = h.kind, byte(h.fields), byte(len(h.spec))
	for i, a := range h.spec {
		p := archOff + i*archSize
		binary.LittleEndian.PutUint64(b[p:], uint64(a.Step))
		binary.LittleEndian.PutUint32(b[p+8:], uint32(a.Rows))
	}
	return b
}

// parseHeader checks a file's first bytes (untrusted: a file may be torn
// or tampered with) against the file's size.
func parseHeader(b []byte, fileSize int64) (header, error) {
	var h header
	if len(b) < headerSize {
		return h, fmt.Errorf("%w: %d bytes, shorter than a header", errCorrupt, len(b))
	}
	if string(b[:8]) != magic {
		return h, fmt.Errorf("%w: bad magic %q", errCorrupt, b[:8])
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != version {
		return h, fmt.Errorf("%w: version %d, want %d", errCorrupt, v, version)
	}
	h.kind, h.fields = b[10], int(b[11])
	n := int(b[12])
	if h.kind < kindNode || h.kind > kindRoute {
		return h, fmt.Errorf("%w: kind %d", errCorrupt, h.kind)
	}
	if h.fields == 0 || h.fields > maxFields || n == 0 || n > maxArchives {
		return h, fmt.Errorf("%w: %d fields, %d archives", errCorrupt, h.fields, n)
	}
	h.spec = make(rrd.Spec, n)
	for i := range h.spec {
		p := archOff + i*archSize
		h.spec[i] = rrd.Archive{Step: time.Duration(binary.LittleEndian.Uint64(b[p:])), Rows: int(binary.LittleEndian.Uint32(b[p+8:]))}
	}
	if err := h.spec.Validate(); err != nil {
		return h, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if h.size() != fileSize {
		return h, fmt.Errorf("%w: %d bytes, want %d", errCorrupt, fileSize, h.size())
	}
	return h, nil
}

type table struct {
	mu      sync.RWMutex
	used    atomic.Uint64 // the store's use count when last used (LRU)
	evicted bool          // unmapped to bound the mappings: map it again
	path    string
	h       header
	b       []byte // the mapping; nil once closed
	offs    []int  // byte offset of each archive's rows
	rowLen  int    // fields × cellSize
}

// createTable makes the file whole under a temporary name and renames it
// into place, so a crash never leaves a file without its header.
func createTable(path string, h header) (*table, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".new-*")
	if err != nil {
		return nil, fmt.Errorf("create archive %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Truncate(h.size()); err == nil {
		_, err = tmp.WriteAt(h.encode(), 0)
	}
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return nil, fmt.Errorf("create archive %s: %w", path, err)
	}
	return openTable(path)
}

// openTable maps an existing file; the descriptor is closed at once (the
// mapping keeps the file), so thousands of tables hold no descriptors.
func openTable(path string) (*table, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	first := make([]byte, headerSize)
	if _, err := f.ReadAt(first, 0); err != nil {
		return nil, fmt.Errorf("open archive %s: %w: %w", path, errCorrupt, err)
	}
	h, err := parseHeader(first, st.Size())
	if err != nil {
		return nil, fmt.Errorf("open archive %s: %w", path, err)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map archive %s: %w", path, err)
	}
	t := &table{path: path, h: h, b: b, rowLen: h.fields * cellSize}
	off := headerSize
	for _, a := range h.spec {
		t.offs = append(t.offs, off)
		off += a.Rows * t.rowLen
	}
	return t, nil
}

// evict closes the table for the LRU: whoever holds it maps it again.
// Unmapping a shared mapping loses nothing: its dirty pages are the
// file's, written back by the kernel; only Close waits for them.
func (t *table) evict() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b != nil {
		unix.Munmap(t.b)
		t.b = nil
	}
	t.evicted = true
}

// close syncs and unmaps; later calls do nothing.
func (t *table) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b == nil {
		return nil
	}
	err := unix.Msync(t.b, unix.MS_SYNC)
	if e := unix.Munmap(t.b); err == nil {
		err = e
	}
	t.b = nil
	if err != nil {
		return fmt.Errorf("close archive %s: %w", t.path, err)
	}
	return nil
}

// errFault is wrapped by the error of an access to a mapping that faulted.
var errFault = errors.New("archive mapping faulted")

// guard runs f, which reads or writes the mapping, and turns a fault on it
// into an error rather than a crash of the master: a file is sparse, so
// the first write to one of its pages takes a block, and when the
// filesystem has none left (disk full) the kernel answers with SIGBUS; the
// same happens when the file was cut short under the mapping. Only the
// page touched is lost: the caller reports the error, and the next write
// succeeds once there is space.
func (t *table) guard(f func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			e, ok := r.(interface{ Addr() uintptr })
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("archive %s: %w at %#x (disk full, or the file cut short): %v", t.path, errFault, e.Addr(), r)
		}
	}()
	f()
	return nil
}

func (t *table) newest() int64 { return int64(binary.LittleEndian.Uint64(t.b[16:])) }

func (t *table) last(i int) int64 {
	return int64(binary.LittleEndian.Uint64(t.b[archOff+i*archSize+16:]))
}

func (t *table) setLast(i int, k int64) {
	binary.LittleEndian.PutUint64(t.b[archOff+i*archSize+16:], uint64(k))
}

// accept records that source src sent a sample at ns, and reports false
// when src already sent one at or after ns (a re-delivery after a crash of
// the master must not count twice). Up to maxSources sources are kept; a
// new one takes the slot of the one heard from longest ago.
func (t *table) accept(src string, ns int64) bool {
	h := fnv.New64a()
	h.Write([]byte(src))
	key := h.Sum64() | 1 // never 0: 0 is an empty slot
	oldest, at := int64(math.MaxInt64), 0
	for i := range maxSources {
		p := srcOff + i*srcSize
		k := binary.LittleEndian.Uint64(t.b[p:])
		last := int64(binary.LittleEndian.Uint64(t.b[p+8:]))
		if k == key {
			if ns <= last {
				return false
			}
			binary.LittleEndian.PutUint64(t.b[p+8:], uint64(ns))
			return true
		}
		if k == 0 {
			last = math.MinInt64
		}
		if last < oldest {
			oldest, at = last, i
		}
	}
	p := srcOff + at*srcSize
	binary.LittleEndian.PutUint64(t.b[p:], key)
	binary.LittleEndian.PutUint64(t.b[p+8:], uint64(ns))
	return true
}

// add consolidates one sample at ns into every archive whose ring still
// holds ns's step: a step after the newest opens it (the skipped steps
// become unknown), an older one still in the ring is merged into (samples
// of an app arrive from several nodes, not in one order). NaN values are
// no sample for their field. It reports whether any archive took it.
func (t *table) add(ns int64, vals []float64) bool {
	took := false
	started := t.newest() != 0
	for i, a := range t.h.spec {
		step := int64(a.Step)
		k := floorDiv(ns, step)
		last := t.last(i)
		switch {
		case !started:
			t.setLast(i, k)
			last = k
		case k > last:
			t.clear(i, last, k)
			t.setLast(i, k)
			last = k
		case k <= last-int64(a.Rows):
			continue
		}
		took = true
		row := t.row(i, k)
		for f := 0; f < t.h.fields && f < len(vals); f++ {
			if v := vals[f]; !math.IsNaN(v) && !math.IsInf(v, 0) {
				merge(row[f*cellSize:], v)
			}
		}
	}
	if ns > t.newest() || !started {
		binary.LittleEndian.PutUint64(t.b[16:], uint64(ns))
	}
	return took
}

// clear makes the steps after last up to k unknown: their slots held
// steps a ring ago.
func (t *table) clear(i int, last, k int64) {
	rows := int64(t.h.spec[i].Rows)
	if k-last >= rows {
		clear(t.b[t.offs[i] : t.offs[i]+int(rows)*t.rowLen])
		return
	}
	for j := last + 1; j <= k; j++ {
		clear(t.row(i, j))
	}
}

func (t *table) row(i int, k int64) []byte {
	rows := int64(t.h.spec[i].Rows)
	slot := int(((k % rows) + rows) % rows)
	p := t.offs[i] + slot*t.rowLen
	return t.b[p : p+t.rowLen]
}

// merge adds v to a cell: a running mean, so the cell stays the step's
// average whatever the order of its samples.
func merge(c []byte, v float64) {
	le := binary.LittleEndian
	n := le.Uint16(c[12:])
	if n == 0 {
		f := math.Float32bits(float32(v))
		le.PutUint32(c[0:], f)
		le.PutUint32(c[4:], f)
		le.PutUint32(c[8:], f)
		le.PutUint16(c[12:], 1)
		return
	}
	if n < math.MaxUint16 {
		n++
	}
	avg := float64(math.Float32frombits(le.Uint32(c[0:])))
	avg += (v - avg) / float64(n)
	le.PutUint32(c[0:], math.Float32bits(float32(avg)))
	if float32(v) < math.Float32frombits(le.Uint32(c[4:])) {
		le.PutUint32(c[4:], math.Float32bits(float32(v)))
	}
	if float32(v) > math.Float32frombits(le.Uint32(c[8:])) {
		le.PutUint32(c[8:], math.Float32bits(float32(v)))
	}
	le.PutUint16(c[12:], n)
}

// cell reads field f of archive i at step k: avg, min, max and n (0:
// unknown, or a step the ring no longer holds).
func (t *table) cell(i int, k int64, f int) (avg, min, max float64, n int) {
	last := t.last(i)
	if t.newest() == 0 || k > last || k <= last-int64(t.h.spec[i].Rows) || f >= t.h.fields {
		return math.NaN(), math.NaN(), math.NaN(), 0
	}
	c := t.row(i, k)[f*cellSize:]
	le := binary.LittleEndian
	if n = int(le.Uint16(c[12:])); n == 0 {
		return math.NaN(), math.NaN(), math.NaN(), 0
	}
	return float64(math.Float32frombits(le.Uint32(c))), float64(math.Float32frombits(le.Uint32(c[4:]))), float64(math.Float32frombits(le.Uint32(c[8:]))), n
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
