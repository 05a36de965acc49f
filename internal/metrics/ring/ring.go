// Package ring keeps a node's metric samples in a fixed-size, crash-safe ring
// on disk, so that the master can be away for a day and lose nothing.
//
// Why it is built this way:
//   - Fixed size: the file is allocated at its full size when created and is
//     only ever overwritten in place, so disk use is known up front and never
//     grows, however long the master stays away; when full, the oldest go.
//   - Crash safety without a journal: every record fills one fixed-size slot,
//     written with a single pwrite of the whole slot and carrying a CRC32C
//     over its sequence number, time, length and payload. A crash can tear at
//     most the slot being written; Open skips any slot whose CRC fails rather
//     than refusing the file, and the head is the highest valid sequence.
//   - Monotonic sequence numbers are the master's cursor: ReadFrom says when a
//     cursor has fallen off the tail, so a gap is reported, not hidden.
//
// The header slot records magic, version, slot size and slot count; a file
// whose geometry differs from the one asked for is an error, never silently
// reformatted.
package ring

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"
)

// DefaultSlotSize fits a node's encoded sample batch with room to spare and
// matches the page size, so a slot write is one page.
const DefaultSlotSize = 4096

// Options fix the geometry and sync policy of a ring.
type Options struct {
	// Slots is the number of data slots; see Capacity.
	Slots int
	// SlotSize is the size of each slot in bytes, header included
	// (DefaultSlotSize when zero); a record's payload may use SlotSize-24.
	SlotSize int
	// SyncEvery fsyncs after every n appends; 0 syncs only on Sync and Close.
	// A killed process loses nothing either way (writes are in the page
	// cache); this bounds what a power loss may take.
	SyncEvery int
}

// Record is one stored record.
type Record struct {
	Seq  uint64
	Time time.Time
	Data []byte
}

// Ring is an open ring file. Its methods are safe for concurrent use.
type Ring struct {
	mu       sync.Mutex
	f        *os.File
	path     string
	geo      geometry
	buf      []byte // one slot, reused by Append
	oldest   uint64 // lowest kept sequence; 0 when empty
	newest   uint64 // highest written sequence; 0 when empty
	unsynced int
	every    int
}

// Capacity returns the slots needed to hold d of records taken every
// interval, rounding up; 0 for non-positive arguments.
func Capacity(d, interval time.Duration) int {
	if d <= 0 || interval <= 0 {
		return 0
	}
	return int((d + interval - 1) / interval)
}

// MaxPayload is the largest record a slot of this size holds.
func MaxPayload(slotSize int) int { return slotSize - slotHeaderSize }

// FileSize is the size on disk of a ring with this geometry.
func FileSize(slots, slotSize int) int64 { return int64(slots+1) * int64(slotSize) }

func (o Options) geometry() (geometry, error) {
	size := o.SlotSize
	if size == 0 {
		size = DefaultSlotSize
	}
	if size < slotHeaderSize+fileHeaderSize || size > 1<<24 {
		return geometry{}, fmt.Errorf("slot size %d out of range [%d, %d]", size, slotHeaderSize+fileHeaderSize, 1<<24)
	}
	if o.Slots < 1 || o.Slots > 1<<26 {
		return geometry{}, fmt.Errorf("slot count %d out of range [1, %d]", o.Slots, 1<<26)
	}
	if o.SyncEvery < 0 {
		return geometry{}, fmt.Errorf("sync every %d: negative", o.SyncEvery)
	}
	return geometry{slotSize: uint32(size), slotCount: uint64(o.Slots)}, nil
}

// Open opens the ring at path, creating it at full size if it does not exist.
func Open(path string, o Options) (*Ring, error) {
	geo, err := o.geometry()
	if err != nil {
		return nil, fmt.Errorf("open ring %s: %w", path, err)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := create(path, geo); err != nil {
			return nil, fmt.Errorf("create ring %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open ring: %w", err)
	}
	r := &Ring{f: f, path: path, geo: geo, buf: make([]byte, geo.slotSize), every: o.SyncEvery}
	if err := r.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("open ring %s: %w", path, err)
	}
	return r, nil
}

// Append stores a record as the next sequence, overwriting the oldest when
// the ring is full, and returns its sequence number.
func (r *Ring) Append(t time.Time, data []byte) (uint64, error) {
	if len(data) > MaxPayload(int(r.geo.slotSize)) {
		return 0, fmt.Errorf("append to ring %s: record of %d bytes, slot holds %d", r.path, len(data), MaxPayload(int(r.geo.slotSize)))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.newest == math.MaxUint64 { // only a forged slot gets here
		return 0, fmt.Errorf("append to ring %s: sequence exhausted", r.path)
	}
	seq := r.newest + 1
	encodeSlot(r.buf, seq, t, data)
	if _, err := r.f.WriteAt(r.buf, r.offset(seq)); err != nil {
		return 0, fmt.Errorf("append to ring %s: %w", r.path, err)
	}
	r.newest = seq
	if r.oldest == 0 {
		r.oldest = seq
	}
	if seq >= r.geo.slotCount && r.oldest < seq-r.geo.slotCount+1 {
		r.oldest = seq - r.geo.slotCount + 1
	}
	r.unsynced++
	if r.every > 0 && r.unsynced >= r.every {
		return seq, r.syncLocked()
	}
	return seq, nil
}

// ReadFrom returns up to max records with sequence above cursor, in order.
// gap is true when records after cursor are no longer kept (the cursor is
// older than the oldest kept, or newer than the newest, as after the ring was
// recreated): the caller has lost them and resumes from what is returned.
// Slots found corrupt since Open are skipped; their sequences are missing.
func (r *Ring) ReadFrom(cursor uint64, max int) (recs []Record, gap bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.newest == 0 {
		return nil, cursor > 0, nil
	}
	if cursor > r.newest || cursor+1 < r.oldest {
		gap = true
		cursor = r.oldest - 1
	}
	buf := make([]byte, r.geo.slotSize)
	for seq := cursor + 1; seq <= r.newest && len(recs) < max; seq++ {
		if _, err := r.f.ReadAt(buf, r.offset(seq)); err != nil {
			return recs, gap, fmt.Errorf("read ring %s seq %d: %w", r.path, seq, err)
		}
		got, t, data, err := decodeSlot(buf)
		if err != nil || got != seq {
			continue
		}
		recs = append(recs, Record{Seq: seq, Time: t, Data: append([]byte(nil), data...)})
	}
	return recs, gap, nil
}

// Oldest is the lowest kept sequence, 0 when the ring is empty.
func (r *Ring) Oldest() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.oldest
}

// Newest is the highest written sequence, 0 when the ring is empty.
func (r *Ring) Newest() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.newest
}

// Sync flushes appended records to disk.
func (r *Ring) Sync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.syncLocked()
}

func (r *Ring) syncLocked() error {
	r.unsynced = 0
	if err := r.f.Sync(); err != nil {
		return fmt.Errorf("sync ring %s: %w", r.path, err)
	}
	return nil
}

// Close syncs and closes the file.
func (r *Ring) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.syncLocked()
	if cerr := r.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close ring %s: %w", r.path, cerr)
	}
	return err
}

// offset is where seq's slot starts; slot 0 is the header.
func (r *Ring) offset(seq uint64) int64 {
	return int64((seq-1)%r.geo.slotCount+1) * int64(r.geo.slotSize)
}
