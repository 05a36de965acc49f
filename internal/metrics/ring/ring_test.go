package ring

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0)

// payload makes a record that names its sequence, of a length that varies.
func payload(seq uint64) []byte {
	b := make([]byte, 8+int(seq%200))
	binary.LittleEndian.PutUint64(b, seq)
	for i := 8; i < len(b); i++ {
		b[i] = byte(seq) ^ byte(i)
	}
	return b
}

func openT(t *testing.T, path string, o Options) *Ring {
	t.Helper()
	r, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func appendN(t *testing.T, r *Ring, n int) {
	t.Helper()
	for range n {
		seq := r.Newest() + 1
		got, err := r.Append(t0.Add(time.Duration(seq)*10*time.Second), payload(seq))
		if err != nil {
			t.Fatal(err)
		}
		if got != seq {
			t.Fatalf("Append returned seq %d, want %d", got, seq)
		}
	}
}

// checkRecords reads the whole ring and wants exactly seqs from..to, each
// with its own payload and time.
func checkRecords(t *testing.T, r *Ring, from, to uint64) {
	t.Helper()
	if r.Oldest() != from || r.Newest() != to {
		t.Fatalf("oldest/newest = %d/%d, want %d/%d", r.Oldest(), r.Newest(), from, to)
	}
	recs, gap, err := r.ReadFrom(from-1, int(to-from+10))
	if err != nil || gap {
		t.Fatalf("ReadFrom: gap %v, err %v", gap, err)
	}
	if uint64(len(recs)) != to-from+1 {
		t.Fatalf("got %d records, want %d", len(recs), to-from+1)
	}
	for i, rec := range recs {
		seq := from + uint64(i)
		if rec.Seq != seq || string(rec.Data) != string(payload(seq)) || !rec.Time.Equal(t0.Add(time.Duration(seq)*10*time.Second)) {
			t.Fatalf("record %d: seq %d time %v len %d, want seq %d", i, rec.Seq, rec.Time, len(rec.Data), seq)
		}
	}
}

// size is the file's length and the bytes it takes on disk.
func size(t *testing.T, path string) (length, onDisk int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size(), st.Sys().(*syscall.Stat_t).Blocks * 512
}

func TestFullRingDropsOldestAndSizeIsFixed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	o := Options{Slots: 16, SlotSize: 512}
	r := openT(t, path, o)
	want := FileSize(16, 512)
	length, disk := size(t, path)
	if length != want || disk < want {
		t.Fatalf("new ring is %d bytes taking %d on disk, want %d allocated up front", length, disk, want)
	}
	for i := range 5 * 16 {
		appendN(t, r, 1)
		if l, d := size(t, path); l != want || d != disk {
			t.Fatalf("after %d appends the file is %d bytes taking %d, want %d taking %d", i+1, l, d, want, disk)
		}
	}
	checkRecords(t, r, 5*16-15, 5*16)
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	o := Options{Slots: 32, SlotSize: 512, SyncEvery: 4}
	r := openT(t, path, o)
	appendN(t, r, 20)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openT(t, path, o)
	checkRecords(t, r, 1, 20)
	appendN(t, r, 30) // wraps
	r.Close()
	r = openT(t, path, o)
	checkRecords(t, r, 50-31, 50)
}

func TestEmptyRing(t *testing.T) {
	r := openT(t, filepath.Join(t.TempDir(), "ring"), Options{Slots: 4})
	recs, gap, err := r.ReadFrom(0, 10)
	if err != nil || gap || len(recs) != 0 || r.Oldest() != 0 || r.Newest() != 0 {
		t.Fatalf("empty ring: %d records, gap %v, err %v, oldest/newest %d/%d", len(recs), gap, err, r.Oldest(), r.Newest())
	}
}

// A torn write of the next slot (half its bytes reached the disk) costs only
// the record it was overwriting; everything else survives and appends go on.
func TestTornSlotIsSkipped(t *testing.T) {
	for _, tc := range []struct {
		name    string
		written int
	}{{"not full", 5}, {"full", 12}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ring")
			o := Options{Slots: 8, SlotSize: 512}
			r := openT(t, path, o)
			appendN(t, r, tc.written)
			r.Close()

			next := uint64(tc.written + 1)
			slot := make([]byte, 512)
			encodeSlot(slot, next, t0, []byte(strings.Repeat("x", 400))) // longer than the half that lands
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			off := int64((next-1)%8+1) * 512
			if _, err := f.WriteAt(slot[:256], off); err != nil {
				t.Fatal(err)
			}
			f.Close()

			r = openT(t, path, o)
			from := uint64(1)
			if tc.written >= 8 {
				from = uint64(tc.written) - 8 + 2 // the overwritten oldest is gone
			}
			checkRecords(t, r, from, uint64(tc.written))
			appendN(t, r, 1)
			if next > 8 {
				from = next - 7
			}
			checkRecords(t, r, from, next)
		})
	}
}

func TestReadFromReportsGap(t *testing.T) {
	r := openT(t, filepath.Join(t.TempDir(), "ring"), Options{Slots: 10, SlotSize: 512})
	appendN(t, r, 25) // keeps 16..25
	for _, tc := range []struct {
		cursor    uint64
		max       int
		gap       bool
		firstSeq  uint64
		wantCount int
	}{
		{cursor: 0, max: 100, gap: true, firstSeq: 16, wantCount: 10},
		{cursor: 14, max: 100, gap: true, firstSeq: 16, wantCount: 10},
		{cursor: 15, max: 100, gap: false, firstSeq: 16, wantCount: 10},
		{cursor: 20, max: 3, gap: false, firstSeq: 21, wantCount: 3},
		{cursor: 25, max: 100, gap: false, wantCount: 0},
		{cursor: 99, max: 100, gap: true, firstSeq: 16, wantCount: 10}, // ring recreated under the master
	} {
		recs, gap, err := r.ReadFrom(tc.cursor, tc.max)
		if err != nil {
			t.Fatal(err)
		}
		if gap != tc.gap || len(recs) != tc.wantCount || (len(recs) > 0 && recs[0].Seq != tc.firstSeq) {
			first := uint64(0)
			if len(recs) > 0 {
				first = recs[0].Seq
			}
			t.Errorf("ReadFrom(%d, %d) = %d records from %d, gap %v; want %d from %d, gap %v",
				tc.cursor, tc.max, len(recs), first, gap, tc.wantCount, tc.firstSeq, tc.gap)
		}
	}
}

func TestGeometryMismatchIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	r := openT(t, path, Options{Slots: 10, SlotSize: 512})
	appendN(t, r, 3)
	r.Close()
	before, _ := os.ReadFile(path)
	for _, o := range []Options{{Slots: 11, SlotSize: 512}, {Slots: 10, SlotSize: 1024}} {
		_, err := Open(path, o)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "geometry differs") {
			t.Errorf("Open with %+v: err %v, want a geometry error naming the file", o, err)
		}
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("a mismatched Open changed the file")
	}
}

func TestAppendTooLarge(t *testing.T) {
	r := openT(t, filepath.Join(t.TempDir(), "ring"), Options{Slots: 2, SlotSize: 512})
	if _, err := r.Append(t0, make([]byte, MaxPayload(512)+1)); err == nil {
		t.Fatal("Append of an oversized record succeeded")
	}
	if _, err := r.Append(t0, make([]byte, MaxPayload(512))); err != nil {
		t.Fatal(err)
	}
}

func TestCapacity(t *testing.T) {
	for _, tc := range []struct {
		d, every time.Duration
		want     int
	}{
		{24 * time.Hour, 10 * time.Second, 8640},
		{24 * time.Hour, time.Second, 86400},
		{time.Minute, 7 * time.Second, 9}, // rounds up
		{time.Minute, time.Minute, 1},
		{time.Second, time.Minute, 1},
		{0, time.Second, 0},
		{time.Hour, 0, 0},
		{-time.Hour, time.Second, 0},
	} {
		if got := Capacity(tc.d, tc.every); got != tc.want {
			t.Errorf("Capacity(%v, %v) = %d, want %d", tc.d, tc.every, got, tc.want)
		}
	}
}

// BenchmarkAppend: a 1,500-byte batch into a 24 h ring at 10 s, without
// fsync and with one per append (the cost a node pays every interval).
func BenchmarkAppend(b *testing.B) {
	for _, every := range []int{0, 1} {
		b.Run(fmt.Sprintf("sync-every-%d", every), func(b *testing.B) {
			r, err := Open(filepath.Join(b.TempDir(), "ring"), Options{Slots: Capacity(24*time.Hour, 10*time.Second), SyncEvery: every})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			data := make([]byte, 1500)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := r.Append(t0, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenFull24h: the scan a node daemon pays at start for a full
// 24 h ring at 10 s.
func BenchmarkOpenFull24h(b *testing.B) {
	path := filepath.Join(b.TempDir(), "ring")
	o := Options{Slots: Capacity(24*time.Hour, 10*time.Second)}
	r, err := Open(path, o)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 1500)
	for range o.Slots {
		if _, err := r.Append(t0, data); err != nil {
			b.Fatal(err)
		}
	}
	r.Close()
	b.ReportAllocs()
	for b.Loop() {
		r, err := Open(path, o)
		if err != nil {
			b.Fatal(err)
		}
		r.f.Close()
	}
}

// A slot corrupted in the middle (a flipped bit) is skipped on reading; the
// records around it are kept and the ring still opens.
func TestCorruptMiddleSlotIsSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	o := Options{Slots: 8, SlotSize: 512}
	r := openT(t, path, o)
	appendN(t, r, 6)
	r.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, 3*512+slotHeaderSize+2); err != nil { // seq 3's payload
		t.Fatal(err)
	}
	f.Close()
	r = openT(t, path, o)
	recs, gap, err := r.ReadFrom(0, 10)
	if err != nil || gap {
		t.Fatalf("ReadFrom: gap %v err %v", gap, err)
	}
	var seqs []uint64
	for _, rec := range recs {
		seqs = append(seqs, rec.Seq)
	}
	if fmt.Sprint(seqs) != "[1 2 4 5 6]" || r.Oldest() != 1 || r.Newest() != 6 {
		t.Fatalf("kept %v, oldest/newest %d/%d; want [1 2 4 5 6], 1/6", seqs, r.Oldest(), r.Newest())
	}
}
