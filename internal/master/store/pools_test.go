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

func goodPool() Pool {
	return Pool{Name: "web", Provider: ProviderHetzner, Min: 1, Max: 4, Desired: 1,
		Types: []string{"cx22", "cx32"}, Regions: []string{"fsn1", "nbg1"}, Image: "12345",
		Labels: map[string]string{"zone": "eu"}, IdleAfter: DefaultIdleAfter, KeepBilledHour: true, MaxCreatesPerHour: 8}
}

// TestValidPool: each bad field is refused naming it; good pools pass.
func TestValidPool(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Pool)
		field  string // "" valid
	}{
		{"good", func(p *Pool) {}, ""},
		{"local without region", func(p *Pool) { p.Provider, p.Regions, p.LocalDir = ProviderLocal, nil, "/var/lib/moat/local" }, ""},
		{"min 0 max 1", func(p *Pool) { p.Min, p.Desired, p.Max = 0, 0, 1 }, ""},
		{"static", func(p *Pool) { *p = Pool{Name: "boxes", Provider: ProviderStatic, IdleAfter: time.Minute} }, ""},
		{"bad name", func(p *Pool) { p.Name = "Web" }, "name"},
		{"long name", func(p *Pool) { p.Name = strings.Repeat("a", 25) }, "name"},
		{"no name", func(p *Pool) { p.Name = "" }, "name"},
		{"provider", func(p *Pool) { p.Provider = "aws" }, "provider"},
		{"negative min", func(p *Pool) { p.Min = -1 }, "min"},
		{"min over max", func(p *Pool) { p.Min, p.Max, p.Desired = 5, 4, 4 }, "min"},
		{"max 0", func(p *Pool) { p.Min, p.Max, p.Desired = 0, 0, 0 }, "max"},
		{"max huge", func(p *Pool) { p.Max = MaxPoolSize + 1 }, "max"},
		{"desired above", func(p *Pool) { p.Desired = 5 }, "desired"},
		{"desired below", func(p *Pool) { p.Desired = 0 }, "desired"},
		{"no type", func(p *Pool) { p.Types = nil }, "type"},
		{"type twice", func(p *Pool) { p.Types = []string{"cx22", "cx22"} }, "type"},
		{"bad type", func(p *Pool) { p.Types = []string{"cx 22"} }, "type"},
		{"no region", func(p *Pool) { p.Regions = nil }, "region"},
		{"region twice", func(p *Pool) { p.Regions = []string{"fsn1", "fsn1"} }, "region"},
		{"image space", func(p *Pool) { p.Image = "a b" }, "image"},
		{"pool label", func(p *Pool) { p.Labels = map[string]string{PoolLabel: "x"} }, "label"},
		{"bad label", func(p *Pool) { p.Labels = map[string]string{"a=b": "x"} }, "label"},
		{"tenant", func(p *Pool) { p.Tenant = "Acme" }, "tenant"},
		{"endpoint scheme", func(p *Pool) { p.Endpoint = "ftp://x" }, "endpoint"},
		{"endpoint no host", func(p *Pool) { p.Endpoint = "http://" }, "endpoint"},
		{"local dir elsewhere", func(p *Pool) { p.LocalDir = "/x" }, "local-dir"},
		{"local dir relative", func(p *Pool) { p.Provider, p.LocalDir = ProviderLocal, "x" }, "local-dir"},
		{"idle", func(p *Pool) { p.IdleAfter = 0 }, "idle-after"},
		{"creates", func(p *Pool) { p.MaxCreatesPerHour = 0 }, "max-creates-per-hour"},
		{"static sized", func(p *Pool) { *p = Pool{Name: "boxes", Provider: ProviderStatic, Max: 3, IdleAfter: time.Minute} }, "min"},
		{"static typed", func(p *Pool) {
			*p = Pool{Name: "boxes", Provider: ProviderStatic, Types: []string{"x"}, IdleAfter: time.Minute}
		}, "type"},
		{"static token", func(p *Pool) {
			*p = Pool{Name: "boxes", Provider: ProviderStatic, TokenSealed: []byte{1}, IdleAfter: time.Minute}
		}, "endpoint"},
	} {
		p := goodPool()
		c.change(&p)
		err := ValidPool(p)
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want invalid naming %s", c.name, err, c.field)
		}
	}
}

func TestDefaultCreatesPerHour(t *testing.T) {
	for _, c := range []struct{ max, want int }{{1, 4}, {2, 4}, {3, 6}, {10, 20}} {
		if got := DefaultCreatesPerHour(c.max); got != c.want {
			t.Errorf("DefaultCreatesPerHour(%d) = %d, want %d", c.max, got, c.want)
		}
	}
}

// TestPools: the built-in static pool, add, read back whole, update
// (checked: a bad change changes nothing), scale all-or-nothing, remove.
func TestPools(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	ps, err := db.Pools(ctx)
	if err != nil || len(ps) != 1 || ps[0].Name != StaticPool || ps[0].Provider != ProviderStatic || ps[0].IdleAfter != DefaultIdleAfter {
		t.Fatalf("a new database's pools: %+v %v", ps, err)
	}
	want := goodPool()
	want.TokenSealed = []byte("sealed")
	want.Endpoint = "http://127.0.0.1:9/v1"
	added, err := db.AddPool(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddPool(ctx, want); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("second add: %v", err)
	}
	bad := want
	bad.Name, bad.Max = "other", 0
	if _, err := db.AddPool(ctx, bad); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("bad add: %v", err)
	}
	got, err := db.GetPool(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(added, got); d != "" {
		t.Errorf("read back (-added +got):\n%s", d)
	}
	if _, err := db.GetPool(ctx, "nope"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("missing pool: %v", err)
	}

	// A change that makes a bad pool changes nothing.
	if _, err := db.UpdatePool(ctx, "web", func(p *Pool) error { p.Max = 0; return nil }); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "max") {
		t.Errorf("bad update: %v", err)
	}
	if again, _ := db.GetPool(ctx, "web"); again.Max != 4 {
		t.Errorf("a refused update changed max to %d", again.Max)
	}
	up, err := db.UpdatePool(ctx, "web", func(p *Pool) error {
		p.Name, p.Max, p.Types, p.TokenSealed = "renamed", 6, []string{"cx32"}, nil
		return nil
	})
	if err != nil || up.Name != "web" || up.Max != 6 || up.Updated.Before(up.Created) {
		t.Fatalf("update: %+v %v", up, err)
	}
	if got, _ := db.GetPool(ctx, "web"); got.Max != 6 || len(got.Types) != 1 || got.TokenSealed != nil {
		t.Errorf("after update: %+v", got)
	}

	// Scale: all or nothing.
	if err := db.SetPoolDesired(ctx, map[string]int{"web": 3}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		desired map[string]int
		want    error
	}{
		{map[string]int{"web": 2, "static": 1}, errs.ErrInvalid},
		{map[string]int{"web": 7}, errs.ErrInvalid},
		{map[string]int{"web": 0}, errs.ErrInvalid},
		{map[string]int{"web": 2, "nope": 1}, errs.ErrNotFound},
	} {
		if err := db.SetPoolDesired(ctx, c.desired); !errors.Is(err, c.want) {
			t.Errorf("SetPoolDesired(%v) = %v, want %v", c.desired, err, c.want)
		}
	}
	if got, _ := db.GetPool(ctx, "web"); got.Desired != 3 {
		t.Errorf("desired %d after refused scales, want 3", got.Desired)
	}
	if _, err := db.UpdatePool(ctx, "web", func(p *Pool) error { p.Removing, p.Min, p.Desired = true, 0, 0; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPoolDesired(ctx, map[string]int{"web": 1}); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("scaling a pool being removed: %v", err)
	}

	if err := db.RemovePool(ctx, StaticPool); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("removing the static pool: %v", err)
	}
	if err := db.RemovePool(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := db.RemovePool(ctx, "web"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("removing it again: %v", err)
	}
}

func TestNodePool(t *testing.T) {
	if NodePool(nil) != StaticPool || NodePool(map[string]string{PoolLabel: "web"}) != "web" || NodePool(map[string]string{PoolLabel: ""}) != StaticPool {
		t.Error("NodePool")
	}
}
