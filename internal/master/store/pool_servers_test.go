package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
)

func TestPoolServers(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	s := PoolServer{Name: "web-abc123", Pool: "web", Type: "cx22", Region: "fsn1", State: ServerCreating, HostKey: "ssh-ed25519 AAAA", Created: at}
	id, err := db.RecordCreateIntent(ctx, s, at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecordCreateIntent(ctx, s, at); err == nil {
		t.Error("a second server of the same name was recorded")
	}
	got, err := db.GetPoolServer(ctx, s.Name)
	if err != nil || !cmp.Equal(got, s) {
		t.Fatalf("read back %+v, %v; want %+v", got, err, s)
	}
	// The failed second intent left no creation row (one transaction).
	cs, err := db.PoolCreations(ctx, "web", at.Add(-time.Hour))
	if err != nil || len(cs) != 1 || cs[0].Outcome != "called" || cs[0].ID != id || !cs[0].At.Equal(at) {
		t.Fatalf("creations %+v, %v", cs, err)
	}
	if err := db.SetCreationOutcome(ctx, id, "created"); err != nil {
		t.Fatal(err)
	}
	s.ProviderID, s.State, s.BilledSince, s.LastError = "42", ServerBooting, at.Add(time.Second), strings.Repeat("é", 2000)
	if err := db.PutPoolServer(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, _ = db.GetPoolServer(ctx, s.Name)
	if got.ProviderID != "42" || got.State != ServerBooting || !got.BilledSince.Equal(s.BilledSince) || len(got.LastError) > maxLastError+len("…") || !strings.HasSuffix(got.LastError, "é…") {
		t.Errorf("updated row %+v", got)
	}
	if ok, err := db.SwapPoolServerState(ctx, s.Name, ServerReady, ServerRetiring); ok || err != nil {
		t.Errorf("swapped from a state it is not in: %v %v", ok, err)
	}
	if ok, err := db.SwapPoolServerState(ctx, s.Name, ServerBooting, ServerEnrolling); !ok || err != nil {
		t.Errorf("not swapped from its state: %v %v", ok, err)
	}
	s.State = ServerEnrolling
	if err := db.PutPoolServer(ctx, PoolServer{Name: "nope"}); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("update of an unknown server: %v", err)
	}
	db.RecordCreateIntent(ctx, PoolServer{Name: "db-1", Pool: "db", State: ServerCreating, Created: at.Add(time.Minute)}, at.Add(2*time.Hour))
	if all, _ := db.PoolServers(ctx, ""); len(all) != 2 || all[0].Name != "web-abc123" {
		t.Errorf("all servers %+v", all)
	}
	if web, _ := db.PoolServers(ctx, "web"); len(web) != 1 {
		t.Errorf("web's servers %+v", web)
	}
	if cs, _ := db.PoolCreations(ctx, "", at.Add(time.Minute)); len(cs) != 1 || cs[0].Pool != "db" {
		t.Errorf("creations since: %+v", cs)
	}
	if err := db.PrunePoolCreations(ctx, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if cs, _ := db.PoolCreations(ctx, "", time.Time{}); len(cs) != 1 || cs[0].Pool != "db" {
		t.Errorf("after pruning: %+v", cs)
	}
	if err := db.DeletePoolServer(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetPoolServer(ctx, s.Name); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("deleted server still read: %v", err)
	}

	// The cluster id is made once and survives a reopen.
	c1, err := db.ClusterID(ctx)
	if err != nil || len(c1) != 12 {
		t.Fatalf("cluster id %q, %v", c1, err)
	}
	if c2, _ := db.ClusterID(ctx); c2 != c1 {
		t.Errorf("cluster id changed: %q then %q", c1, c2)
	}
	db.Close()
	db2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if c3, _ := db2.ClusterID(ctx); c3 != c1 {
		t.Errorf("cluster id after reopen %q, want %q", c3, c1)
	}
}
