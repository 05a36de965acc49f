package partial

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTracker(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name   string
		start  int64
		writes [][2]int64 // offset, length
		prefix int64
	}{
		{"in order", 0, [][2]int64{{0, mib}, {mib, mib}}, 2 * mib},
		{"out of order", 0, [][2]int64{{mib, mib}, {2 * mib, mib}, {0, mib}}, 3 * mib},
		{"a gap stays a gap", 0, [][2]int64{{0, mib}, {2 * mib, mib}}, mib},
		{"overlapping", 0, [][2]int64{{0, 100}, {50, 100}, {120, 10}}, 150},
		{"resumed", 5 * mib, [][2]int64{{5 * mib, mib}}, 6 * mib},
		{"resumed past a gap", 2 * mib, [][2]int64{{3 * mib, mib}}, 2 * mib},
		{"nothing", 0, [][2]int64{{0, 0}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "blob"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tr := NewTracker(f, tt.start)
			for _, w := range tt.writes {
				tr.Wrote(w[0], w[1])
			}
			tr.Flush()
			if got, ok := Written(f); !ok || got != tt.prefix {
				t.Errorf("published %d (%v), want %d", got, ok, tt.prefix)
			}
		})
	}
}

// TestPublishedOnlyInSteps: readers are told of growth a mebibyte at a
// time (each publication is a syscall), and of all of it on Flush.
func TestPublishedOnlyInSteps(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "blob"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := Written(f); ok {
		t.Fatal("a fresh file says something was written")
	}
	tr := NewTracker(f, 0)
	tr.Wrote(0, 1000)
	if n, ok := Written(f); ok {
		t.Errorf("1000 bytes published (%d) before a whole step", n)
	}
	tr.Wrote(1000, publishEvery)
	if n, _ := Written(f); n != 1000+publishEvery {
		t.Errorf("published %d after a step, want %d", n, 1000+publishEvery)
	}
}

func TestWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if Writing(r) {
		t.Error("writing before anyone locked it")
	}
	if err := Lock(w); err != nil {
		t.Fatal(err)
	}
	if !Writing(r) {
		t.Error("not writing while the writer holds its lock")
	}
	w.Close()
	if Writing(r) {
		t.Error("still writing after the writer closed it")
	}
}
