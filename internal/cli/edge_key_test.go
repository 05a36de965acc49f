package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestEdgeKeyMadeOnce: node adds run at once on an operator's machine
// without an edge cache key all get the same one, made whole (32 bytes,
// 0600, its directory 0700), exactly one of them saying it made it; a key
// others can read is refused.
func TestEdgeKeyMadeOnce(t *testing.T) {
	for i := range 50 {
		path := filepath.Join(t.TempDir(), "moat", "edge-cache.key")
		keys := make([][]byte, 6)
		made := make([]bool, len(keys))
		errs := make([]error, len(keys))
		var wg sync.WaitGroup
		for j := range keys {
			wg.Add(1)
			go func() { defer wg.Done(); keys[j], made[j], errs[j] = loadOrMakeEdgeKey(path) }()
		}
		wg.Wait()
		n := 0
		for j := range keys {
			if errs[j] != nil || len(keys[j]) != 32 || !bytes.Equal(keys[j], keys[0]) {
				t.Fatalf("round %d, add %d: %x, %v; want the key the others got, %x", i, j, keys[j], errs[j], keys[0])
			}
			if made[j] {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("round %d: %d adds say they made the key, want 1", i, n)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
			t.Fatalf("round %d: the key file %v, %v; want 32 bytes, 0600", i, fi, err)
		}
		if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
			t.Fatalf("round %d: the key's directory %v, %v; want 0700", i, di, err)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".edge-cache.key-*")); len(left) > 0 {
			t.Fatalf("round %d: temporary files left: %v", i, left)
		}
	}
	path := filepath.Join(t.TempDir(), "edge-cache.key")
	if err := os.WriteFile(path, bytes.Repeat([]byte{1}, 32), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadOrMakeEdgeKey(path); err == nil {
		t.Error("a key others can read was taken")
	}
}
