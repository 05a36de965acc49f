package archive

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/masterapi"
)

// TestDiskFull: archive files are sparse and written through a shared
// mapping, so when the filesystem is full the first write to a page gets
// SIGBUS. Ingest returns an error instead of crashing the master, reads
// go on, and once there is space again ingesting works. The filesystem is
// a 2 MiB tmpfs mounted for the test.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=2m,mode=0700"); err != nil {
		t.Fatalf("mount a small tmpfs (the test runs as root, as the suite does): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	s, c := open(t, filepath.Join(dir, "metrics"), nil)
	c.set(t0.Add(30 * 24 * time.Hour))
	if err := s.Ingest("n1", rec(t0, nodeGroup("n1", 1))); err != nil {
		t.Fatal(err)
	}
	fill(t, filepath.Join(dir, "filler"))

	// A day later: rows in pages never written, in every archive.
	err := s.Ingest("n1", rec(t0.Add(24*time.Hour), nodeGroup("n1", 2)))
	if !errors.Is(err, errFault) {
		t.Fatalf("ingest on a full disk: %v; want a fault reported", err)
	}
	h := history(t, s, masterapi.MetricsNode, "n1", t0.Add(-time.Minute), t0.Add(time.Minute))
	if n := countKnown(h); n == 0 {
		t.Errorf("the sample taken before the disk filled is not read back: %+v", h.Avg[0])
	}

	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := s.Ingest("n1", rec(t0.Add(25*time.Hour), nodeGroup("n1", 3))); err != nil {
		t.Fatalf("ingest once there is space again: %v", err)
	}
	h = history(t, s, masterapi.MetricsNode, "n1", t0.Add(25*time.Hour-time.Minute), t0.Add(25*time.Hour+time.Minute))
	if n := countKnown(h); n == 0 {
		t.Errorf("the sample taken once there was space is not read back: %+v", h.Avg[0])
	}
}

// TestFileCutShort: a file truncated under its mapping (by hand, or a
// damaged filesystem) faults on access; ingest and reads return errors
// and the master goes on.
func TestFileCutShort(t *testing.T) {
	dir := t.TempDir()
	s, c := open(t, dir, nil)
	c.set(t0.Add(30 * 24 * time.Hour))
	if err := s.Ingest("n1", rec(t0, nodeGroup("n1", 1))); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "nodes", "n1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Ingest("n1", rec(t0.Add(time.Hour), nodeGroup("n1", 2))); !errors.Is(err, errFault) {
		t.Errorf("ingest into a file cut short: %v; want a fault reported", err)
	}
	if _, err := s.History(masterapi.MetricsQuery{Kind: masterapi.MetricsNode, Name: "n1", Since: t0, Until: t0.Add(time.Hour)}); !errors.Is(err, errFault) {
		t.Errorf("history of a file cut short: %v; want a fault reported", err)
	}
}

// fill writes a file until the filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

func countKnown(h masterapi.Metrics) int {
	n := 0
	for _, v := range h.Avg[0] {
		if !math.IsNaN(float64(v)) {
			n++
		}
	}
	return n
}
