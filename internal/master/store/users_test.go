package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

func TestUsers(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	alice := User{Name: "alice", Keys: []UserKey{{Fingerprint: "SHA256:a1", Key: "ssh-ed25519 A1"}}, Principals: []string{"alice", "a.smith"},
		Roles: []RoleBinding{{Tenant: "shop", Role: "admin"}}}
	if err := db.AddUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	// A name, key or principal someone has is a conflict, and nothing of
	// the refused user is kept.
	for _, u := range []User{
		{Name: "alice"},
		{Name: "bob", Keys: []UserKey{{Fingerprint: "SHA256:a1", Key: "ssh-ed25519 A1"}}},
		{Name: "bob", Principals: []string{"a.smith"}},
	} {
		if err := db.AddUser(ctx, u); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("add %+v: %v, want a conflict", u, err)
		}
	}
	if _, err := db.User(ctx, "bob"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("a refused user was kept: %v", err)
	}
	if err := db.AddUserKey(ctx, "alice", UserKey{Fingerprint: "SHA256:a2", Key: "ssh-ed25519 A2"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRole(ctx, "alice", RoleBinding{Tenant: "shop", Role: "viewer"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRole(ctx, "alice", RoleBinding{Tenant: "*", Role: "viewer"}); err != nil {
		t.Fatal(err)
	}
	got, err := db.User(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Keys) != 2 || len(got.Principals) != 2 || len(got.Roles) != 2 || got.Roles[1] != (RoleBinding{"shop", "viewer"}) {
		t.Fatalf("alice: %+v", got)
	}
	if err := db.RemoveRole(ctx, "alice", "shop"); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveRole(ctx, "alice", "shop"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("removing a role twice: %v", err)
	}
	if err := db.RemoveUserKey(ctx, "alice", "SHA256:a1"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRole(ctx, "nobody", RoleBinding{Tenant: "shop", Role: "viewer"}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("a role for nobody: %v", err)
	}
	if err := db.RemoveUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	// Everything of hers went with her: her key is free for another.
	if err := db.AddUser(ctx, User{Name: "bob", Keys: []UserKey{{Fingerprint: "SHA256:a2", Key: "ssh-ed25519 A2"}}, Principals: []string{"a.smith"}}); err != nil {
		t.Fatalf("alice's key and principal not freed: %v", err)
	}
	users, err := db.Users(ctx)
	if err != nil || len(users) != 1 || users[0].Name != "bob" || len(users[0].Roles) != 0 {
		t.Fatalf("users: %+v %v", users, err)
	}
}

func TestCAs(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	if err := db.TrustCA(ctx, CA{Name: "corp", Fingerprint: "SHA256:c", Key: "ssh-ed25519 C"}); err != nil {
		t.Fatal(err)
	}
	if err := db.TrustCA(ctx, CA{Name: "again", Fingerprint: "SHA256:c", Key: "ssh-ed25519 C"}); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("the same CA twice: %v", err)
	}
	if err := db.TrustCA(ctx, CA{Name: "corp", Fingerprint: "SHA256:d", Key: "ssh-ed25519 D"}); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("two CAs of one name: %v", err)
	}
	cas, err := db.CAs(ctx)
	if err != nil || len(cas) != 1 || cas[0].Name != "corp" {
		t.Fatalf("CAs: %+v %v", cas, err)
	}
	if err := db.UntrustCA(ctx, "corp"); err != nil {
		t.Fatal(err)
	}
	if err := db.UntrustCA(ctx, "corp"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("untrust twice: %v", err)
	}
}

// 10,000 users load in one pass: the master rebuilds its index from this
// after every change that takes something away (a user, a key, a role, a
// CA), before it ends the sessions that lost it, so it bounds how long a
// revocation takes. It reports the load's p50 and p99.
//
//	go test -run '^$' -bench Users10k -benchtime 50x ./internal/master/store/
func BenchmarkUsers10k(b *testing.B) {
	db, err := Open(b.TempDir() + "/m.db")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for i := range 10000 {
		name := fmt.Sprintf("user%05d", i)
		if err := db.AddUser(ctx, User{Name: name, Keys: []UserKey{{Fingerprint: "SHA256:" + name, Key: "ssh-ed25519 " + name}},
			Roles: []RoleBinding{{Tenant: "default", Role: "viewer"}}}); err != nil {
			b.Fatal(err)
		}
	}
	var times []time.Duration
	for b.Loop() {
		t0 := time.Now()
		users, err := db.Users(ctx)
		times = append(times, time.Since(t0))
		if err != nil || len(users) != 10000 {
			b.Fatal(len(users), err)
		}
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
}
