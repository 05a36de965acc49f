package archive

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/metrics/rrd"
)

// FuzzParseHeader: whatever a file's first page holds, parsing never
// panics, and a header it accepts describes a file of exactly that size
// with a valid spec.
func FuzzParseHeader(f *testing.F) {
	good := header{kind: kindNode, fields: 11, spec: rrd.Default}
	f.Add(good.encode(), good.size())
	f.Add(header{kind: kindReplica, fields: 9, spec: ReplicaSpec}.encode(), int64(4096))
	f.Add([]byte(magic), int64(8))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		if len(b) < headerSize {
			b = append(b, make([]byte, headerSize-len(b))...)
		}
		h, err := parseHeader(b, size)
		if err != nil {
			return
		}
		if h.size() != size || h.spec.Validate() != nil || h.fields == 0 || h.fields > maxFields {
			t.Fatalf("accepted %+v for a file of %d bytes", h, size)
		}
	})
}

// TestCorruptFiles: a file that is not a whole archive (torn, truncated,
// another kind's) is never mapped: a read says so, an ingest sets it
// aside and starts the entity anew.
func TestCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, nil)
	if err := s.Ingest("n1", rec(t0, nodeGroup("n1", 1))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, "nodes", "n1")
	b, _ := os.ReadFile(path)
	if err := os.Truncate(path, 8192); err != nil {
		t.Fatal(err)
	}
	if _, err := openTable(path); !errors.Is(err, errCorrupt) {
		t.Fatalf("a truncated file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "apps", "web"), b, 0o600) // a node's file among the apps
	s2, _ := open(t, dir, nil)
	if _, err := s2.History(masterapiQuery("node", "n1")); !errors.Is(err, errCorrupt) {
		t.Fatalf("history of a truncated file: %v", err)
	}
	if _, err := s2.History(masterapiQuery("app", "web")); !errors.Is(err, errCorrupt) {
		t.Fatalf("history of a node's file as an app's: %v", err)
	}
	if err := s2.Ingest("n1", rec(t0.Add(10*time.Second), nodeGroup("n1", 2))); err != nil {
		t.Fatal(err)
	}
	if m := history(t, s2, "node", "n1", t0, t0.Add(10*time.Second)); m.Avg[0][1] != 2 || !math.IsNaN(float64(m.Avg[0][0])) {
		t.Fatalf("after starting anew: %v", m.Avg[0])
	}
	if _, err := os.Stat(filepath.Join(dir, "nodes", ".n1.corrupt")); err != nil {
		t.Fatalf("the corrupt file not kept aside: %v", err)
	}
}
