package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// openTenancy opens a database that holds tenants. While a migration
// before tenantsV5 is still reserved, migrate stops short of it: the test
// applies it itself, as migrate will once those are built.
func openTenancy(t *testing.T) *DB {
	t.Helper()
	db, _ := openTest(t)
	ctx := context.Background()
	if ok, err := db.tenancyReady(ctx); err != nil {
		t.Fatal(err)
	} else if !ok {
		if _, err := db.db.ExecContext(ctx, tenantsV5); err != nil {
			t.Fatalf("tenantsV5: %v", err)
		}
		db.tenancy = true
	}
	return db
}

func TestAppKeys(t *testing.T) {
	for _, c := range []struct{ tenant, app, key string }{
		{"default", "web", "web"},
		{"", "web", "web"},
		{"acme", "web", "acme.web"},
		{"a-b", "x-1", "a-b.x-1"},
	} {
		if got := AppKey(c.tenant, c.app); got != c.key {
			t.Errorf("AppKey(%q, %q) = %q, want %q", c.tenant, c.app, got, c.key)
		}
		tenant, app := SplitAppKey(c.key)
		if want := c.tenant; tenant != want && !(want == "" && tenant == DefaultTenant) || app != c.app {
			t.Errorf("SplitAppKey(%q) = %q, %q", c.key, tenant, app)
		}
	}
	// The longest tenant and app names make a replica ID a node accepts
	// as a container name (at most 63 characters).
	id := AppKey(strings.Repeat("t", 24), strings.Repeat("a", 30)) + "-abcdef"
	if len(id) > 63 {
		t.Errorf("replica ID %d characters long", len(id))
	}
	for _, bad := range []string{"", "Acme", "1acme", "a.b", strings.Repeat("t", 25), "a_b"} {
		if err := ValidTenant(bad); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("ValidTenant(%q) = %v", bad, err)
		}
	}
}

func TestTenants(t *testing.T) {
	db := openTenancy(t)
	ctx := context.Background()
	ts, err := db.Tenants(ctx)
	if err != nil || len(ts) != 1 || ts[0].Name != DefaultTenant || ts[0].Created.IsZero() {
		t.Fatalf("a new database's tenants: %+v %v", ts, err)
	}
	if _, err := db.AddTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddTenant(ctx, "acme"); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("second add: %v", err)
	}
	if _, err := db.AddTenant(ctx, "Bad.Name"); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	four, gi := int64(4000), int64(1<<30)
	if err := db.SetQuota(ctx, "acme", Quota{MilliCPU: &four, MemoryBytes: &gi}); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetTenant(ctx, "acme")
	if err != nil || got.Quota.MilliCPU == nil || *got.Quota.MilliCPU != 4000 || *got.Quota.MemoryBytes != gi || got.Quota.Replicas != nil {
		t.Fatalf("acme: %+v %v", got, err)
	}
	if err := db.SetQuota(ctx, "nosuch", Quota{}); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("quota of a missing tenant: %v", err)
	}
	minus := int64(-1)
	if err := db.SetQuota(ctx, "acme", Quota{Apps: &minus}); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("negative quota: %v", err)
	}

	// A node of acme's; a node naming a missing tenant is refused.
	n := Node{Name: "n1", Addr: "a:22", User: "root", HostKey: "k", Enrolled: time.Now(), Tenant: "acme", Shared: true}
	if err := db.PutNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := db.PutNode(ctx, Node{Name: "n2", Addr: "b:22", Tenant: "nosuch"}); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("node of a missing tenant: %v", err)
	}
	if _, err := db.GetNode(ctx, "n2"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("the refused node was recorded: %v", err)
	}
	if err := db.PutNode(ctx, Node{Name: "n3", Addr: "c:22"}); err != nil {
		t.Fatal(err)
	}
	nodes, _ := db.Nodes(ctx)
	if len(nodes) != 2 || nodes[0].Tenant != "acme" || !nodes[0].Shared || nodes[1].Tenant != DefaultTenant || nodes[1].Shared {
		t.Fatalf("nodes %+v", nodes)
	}
	db.NewRevision(ctx, Revision{App: AppKey("acme", "web"), Spec: []byte(`{}`), Image: "sha256:a", Template: "t", Cause: "deploy"})
	err = db.RemoveTenant(ctx, "acme")
	if !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "apps web and nodes n1") {
		t.Errorf("remove a tenant holding things: %v", err)
	}
	db.DeleteApp(ctx, AppKey("acme", "web"))
	db.DeleteNode(ctx, "n1")
	if err := db.RemoveTenant(ctx, "acme"); err != nil {
		t.Errorf("remove an empty tenant: %v", err)
	}
	if err := db.RemoveTenant(ctx, "acme"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("remove again: %v", err)
	}
	if err := db.RemoveTenant(ctx, DefaultTenant); !errors.Is(err, errs.ErrForbidden) {
		t.Errorf("remove the default tenant: %v", err)
	}
}

// A database made before tenants migrates with everything in the
// default tenant.
func TestTenantsMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "master.db")
	// The database as the moat before tenants left it: every migration
	// before tenantsV5, a node and an app.
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for v := 1; v < tenantsVersion; v++ {
		if migrations[v-1] == reserved {
			t.Skipf("migration %d is not built yet", v)
		}
		if _, err := raw.ExecContext(ctx, migrations[v-1]); err != nil {
			t.Fatalf("migration %d: %v", v, err)
		}
		raw.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, v, now())
	}
	if _, err := raw.ExecContext(ctx, `INSERT INTO nodes (name, addr, user, host_key, enrolled) VALUES ('old', 'a:22', 'root', 'k', ?)`, now()); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `INSERT INTO apps (name, revision, created) VALUES ('web', 1, ?)`, now()); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _ := db.Version(ctx); v < tenantsVersion {
		t.Fatalf("at version %d after open", v)
	}
	n, err := db.GetNode(ctx, "old")
	if err != nil || n.Tenant != DefaultTenant || n.Shared {
		t.Errorf("a node from before tenants: %+v %v", n, err)
	}
	if ts, _ := db.Tenants(ctx); len(ts) != 1 || ts[0].Name != DefaultTenant || ts[0].Quota != (Quota{}) {
		t.Errorf("tenants %+v", ts)
	}
	apps, _ := db.Apps(ctx)
	if len(apps) != 1 {
		t.Fatalf("apps %+v", apps)
	}
	if tenant, name := SplitAppKey(apps[0].Name); tenant != DefaultTenant || name != "web" {
		t.Errorf("the app from before tenants is %s's %s", tenant, name)
	}
}

// FuzzTenantNames: a tenant name comes from a request header. Whatever
// it is, a valid one and a valid app name make a key that splits back
// into them, never into another tenant's app, and is a name a node
// takes for a container.
func FuzzTenantNames(f *testing.F) {
	for _, s := range [][2]string{{"acme", "web"}, {"default", "x"}, {"a.b", "c"}, {"", "web"}, {strings.Repeat("t", 24), strings.Repeat("a", 30)}} {
		f.Add(s[0], s[1])
	}
	appRE := regexp.MustCompile(`^[a-z][a-z0-9-]{0,29}$`)
	containerRE := regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	f.Fuzz(func(t *testing.T, tenant, app string) {
		if ValidTenant(tenant) != nil || !appRE.MatchString(app) {
			return
		}
		key := AppKey(tenant, app)
		if gt, ga := SplitAppKey(key); gt != tenant || ga != app {
			t.Errorf("AppKey(%q, %q) = %q splits into %q, %q", tenant, app, key, gt, ga)
		}
		if id := key + "-abcdef"; !containerRE.MatchString(id) {
			t.Errorf("replica ID %q is no container name", id)
		}
	})
}
