package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

func TestSecrets(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	if v, _ := db.Version(ctx); v < 4 {
		t.Skip("the migrations before secrets' are not built yet")
	}
	put := func(name string, version int, env string) error {
		_, err := db.PutSecret(ctx, Secret{Tenant: "default", App: "web", Name: name, Version: version, Envelope: []byte(env)})
		return err
	}
	if err := put("db", 1, "e1"); err != nil {
		t.Fatal(err)
	}
	// A stale or skipped version changes nothing.
	for _, v := range []int{1, 3} {
		if err := put("db", v, "bad"); !errors.Is(err, errs.ErrConflict) {
			t.Fatalf("version %d: %v, want a conflict", v, err)
		}
	}
	if err := put("db", 2, "e2"); err != nil {
		t.Fatal(err)
	}
	put("api", 1, "a1")
	s, err := db.GetSecret(ctx, "default", "web", "db", 0)
	if err != nil || s.Version != 2 || string(s.Envelope) != "e2" {
		t.Fatalf("latest: %+v %v", s, err)
	}
	if s, err := db.GetSecret(ctx, "default", "web", "db", 1); err != nil || string(s.Envelope) != "e1" {
		t.Fatalf("version 1: %+v %v", s, err)
	}
	all, err := db.Secrets(ctx, "", "")
	if err != nil || len(all) != 2 || all[0].Name != "api" || all[1].Version != 2 || !all[1].Created.Before(all[1].Updated) {
		t.Fatalf("list: %+v %v", all, err)
	}
	// A rotation replaces all or nothing.
	err = db.ReplaceEnvelopes(ctx, []Secret{{Tenant: "default", App: "web", Name: "api", Version: 1, Envelope: []byte("r1")}, {Tenant: "default", App: "web", Name: "db", Version: 9, Envelope: []byte("r2")}})
	if !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("rotation of a version not kept: %v", err)
	}
	if s, _ := db.GetSecret(ctx, "default", "web", "api", 0); string(s.Envelope) != "a1" {
		t.Fatalf("a failed rotation changed api: %q", s.Envelope)
	}
	// Only the last versions are kept.
	for v := 3; v <= 8; v++ {
		if err := put("db", v, fmt.Sprint("e", v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.GetSecret(ctx, "default", "web", "db", 3); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("version 3 of 8 is kept: %v", err)
	}
	if vs, _ := db.SecretVersions(ctx, "default"); len(vs) != 1+KeepSecretVersions {
		t.Errorf("%d versions kept, want %d", len(vs), 1+KeepSecretVersions)
	}
	if err := db.RemoveSecret(ctx, "default", "web", "db"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetSecret(ctx, "default", "web", "db", 0); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("removed secret: %v", err)
	}
}
