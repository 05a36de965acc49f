package store

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestEdgeCacheEntries: changes are kept per key ID and hash, the latest
// winning with a higher version; deletions (sealed, first byte 3) are
// forgotten after a day, entries are not.
func TestEdgeCacheEntries(t *testing.T) {
	d, _ := openTest(t)
	ctx := context.Background()
	h1, h2 := bytes.Repeat([]byte("a"), 64), bytes.Repeat([]byte("b"), 64)
	v1, err := d.PutEdgeCacheEntry(ctx, "k1", string(h1), []byte{2, 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutEdgeCacheEntry(ctx, "k2", string(h1), []byte{2, 9}); err != nil {
		t.Fatal(err)
	}
	v3, err := d.PutEdgeCacheEntry(ctx, "k1", string(h1), []byte{2, 2})
	if err != nil || v3 <= v1 {
		t.Fatalf("a newer change: version %d after %d, %v", v3, v1, err)
	}
	if _, err := d.PutEdgeCacheEntry(ctx, "k1", string(h2), []byte{3, 7}); err != nil {
		t.Fatal(err)
	}
	got, err := d.EdgeCacheEntries(ctx, "k1")
	if err != nil || len(got) != 2 || got[0].Hash != string(h1) || !bytes.Equal(got[0].Data, []byte{2, 2}) || !bytes.Equal(got[1].Data, []byte{3, 7}) {
		t.Fatalf("k1's entries: %+v, %v", got, err)
	}
	old := time.Now().Add(-25 * time.Hour).UTC().Format(time.RFC3339Nano)
	if _, err := d.db.ExecContext(ctx, `UPDATE edge_cache SET updated = ?`, old); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutEdgeCacheEntry(ctx, "k2", string(h2), []byte{2, 5}); err != nil {
		t.Fatal(err)
	}
	got, _ = d.EdgeCacheEntries(ctx, "k1")
	if len(got) != 1 || got[0].Hash != string(h1) {
		t.Errorf("after a day, k1's entries: %+v; want the deletion gone, the entry kept", got)
	}
}
