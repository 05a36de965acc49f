package store

import (
	"context"
	"path/filepath"
	"testing"
)

func TestLinkKeys(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PutLinkKey(ctx, LinkKey{ID: "web>db:5432", Private: []byte("A"), Public: "ssh-ed25519 AAA"}); err != nil {
		t.Fatal(err)
	}
	// A second key for the same link does not replace the first.
	if err := db.PutLinkKey(ctx, LinkKey{ID: "web>db:5432", Private: []byte("B"), Public: "ssh-ed25519 BBB"}); err != nil {
		t.Fatal(err)
	}
	keys, err := db.LinkKeys(ctx)
	if err != nil || len(keys) != 1 || string(keys[0].Private) != "A" || keys[0].Created.IsZero() {
		t.Fatalf("keys %+v, %v: want the first key only", keys, err)
	}
	if err := db.DeleteLinkKey(ctx, "web>db:5432"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := db.LinkKeys(ctx); len(keys) != 0 {
		t.Fatalf("after delete: %+v", keys)
	}
}
