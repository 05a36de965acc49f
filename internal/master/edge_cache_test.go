package master

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// TestEdgeCacheMalformedNotStored: a malformed change in an edge's outbox
// (an edge's bug, or an edge not to be trusted) is neither stored nor
// carried, since an edge refuses a whole install batch holding one, and
// every catch-up of the other edges would then fail; the well-formed
// changes beside it are kept.
func TestEdgeCacheMalformedNotStored(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ec := newEdgeCaches(db, slog.New(slog.DiscardHandler))
	good := strings.Repeat("ab", 32)
	ec.carryFrom(ctx, "n1", "0123456789abcdef", []nodeapi.EdgeCacheEntry{
		{Seq: 1, Hash: "../../etc/passwd", Data: []byte{2, 1}},
		{Seq: 2, Hash: strings.ToUpper(good), Data: []byte{2, 1}},
		{Seq: 3, Hash: strings.Repeat("cd", 32)},
		{Seq: 4, Hash: strings.Repeat("ef", 32), Data: make([]byte, nodeapi.MaxEdgeCacheEntry+1)},
		{Seq: 5, Hash: good, Data: []byte{2, 1}},
	})
	stored, err := db.EdgeCacheEntries(ctx, "0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].Hash != good {
		var hashes []string
		for _, s := range stored {
			hashes = append(hashes, s.Hash)
		}
		t.Fatalf("stored %q, want only the well-formed %s", hashes, good)
	}
	// What is stored makes a valid install: a catch-up goes through.
	in := nodeapi.EdgeCacheInstall{KeyID: "0123456789abcdef"}
	for _, s := range stored {
		in.Entries = append(in.Entries, nodeapi.EdgeCacheEntry{Hash: s.Hash, Data: s.Data})
	}
	if err := in.Validate(); err != nil {
		t.Errorf("the stored entries as a catch-up: %v", err)
	}
}
