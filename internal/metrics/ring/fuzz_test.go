package ring

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

var fuzzOpts = Options{Slots: 8, SlotSize: 128}

// FuzzOpen opens arbitrary file bytes: Open may refuse a bad header or size
// but must never panic, and what it opens must read back consistently.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed")
	r, err := Open(seed, fuzzOpts)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 11 {
		r.Append(t0.Add(time.Duration(i)*time.Second), payload(uint64(i))[:8+i])
	}
	r.Close()
	b, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{})
	f.Add([]byte(magic))

	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "ring")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path, fuzzOpts)
		if err != nil {
			return
		}
		defer r.f.Close() // not Close: an fsync per input would stall the fuzzer
		oldest, newest := r.Oldest(), r.Newest()
		if newest-oldest >= uint64(fuzzOpts.Slots) || (newest == 0) != (oldest == 0) {
			t.Fatalf("oldest %d newest %d outside one ring", oldest, newest)
		}
		recs, _, err := r.ReadFrom(0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(recs); i++ {
			if recs[i].Seq <= recs[i-1].Seq {
				t.Fatalf("records out of order: %d after %d", recs[i].Seq, recs[i-1].Seq)
			}
		}
		if _, err := r.Append(t0, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if got := r.Newest(); got != newest+1 {
			t.Fatalf("newest after append %d, want %d", got, newest+1)
		}
	})
}
