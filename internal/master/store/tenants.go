package store

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// tenantsV5: see migrations in store.go. Tenants and their quotas (NULL:
// unlimited), and the tenant of each node. An app's tenant is part of its
// key (AppKey), so apps, revisions and replicas need no column; a node
// with no row is the default tenant's and not shared. Everything that
// exists before this migration is the default tenant's.
const tenantsV5 = `CREATE TABLE tenants (
		name     TEXT PRIMARY KEY,
		cpu      INTEGER,
		memory   INTEGER,
		replicas INTEGER,
		apps     INTEGER,
		nodes    INTEGER,
		created  TEXT NOT NULL
	);
	INSERT INTO tenants (name, created) VALUES ('default', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
	CREATE TABLE node_tenants (
		node   TEXT PRIMARY KEY REFERENCES nodes(name) ON DELETE CASCADE,
		tenant TEXT NOT NULL REFERENCES tenants(name),
		shared INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX node_tenants_by_tenant ON node_tenants(tenant);`

// tenantsVersion is the schema version that holds tenants.
const tenantsVersion = 5

// DefaultTenant always exists: it holds whatever was made before tenants
// existed, and what is made without naming a tenant.
const DefaultTenant = "default"

// Tenant is a tenant and its quota.
type Tenant struct {
	Name    string    `json:"name"`
	Quota   Quota     `json:"quota"`
	Created time.Time `json:"created"`
}

// Quota bounds what a tenant may use; a nil limit is unlimited. CPU and
// memory are what the tenant's apps request (replicas × per replica),
// replicas what they ask for in total.
type Quota struct {
	MilliCPU    *int64 `json:"milliCPU,omitempty"`
	MemoryBytes *int64 `json:"memoryBytes,omitempty"`
	Replicas    *int64 `json:"replicas,omitempty"`
	Apps        *int64 `json:"apps,omitempty"`
	Nodes       *int64 `json:"nodes,omitempty"`
}

// tenantNameRE: like an app's name, but at most 24 characters, so that
// "TENANT.APP-XXXXXX" (a replica's ID, its container's name on a node)
// stays within the node's 63.
var tenantNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]{0,23}$`) })

// ValidTenant checks a tenant's name.
func ValidTenant(name string) error {
	if !tenantNameRE().MatchString(name) {
		return errs.Invalid("tenant", "%q: want 1 to 24 lowercase letters, digits and '-', starting with a letter", name)
	}
	return nil
}

// AppKey is how the store names a tenant's app: the app's own name in the
// default tenant (so apps, replicas and containers made before tenants
// keep their names), "TENANT.APP" in any other. App names hold no '.',
// so a key says which tenant it is in.
func AppKey(tenant, app string) string {
	if tenant == "" || tenant == DefaultTenant {
		return app
	}
	return tenant + "." + app
}

// SplitAppKey is the tenant and the app's name of a key made by AppKey.
func SplitAppKey(key string) (tenant, app string) {
	if t, a, ok := strings.Cut(key, "."); ok {
		return t, a
	}
	return DefaultTenant, key
}

// tenancyReady says whether the database holds tenants yet: their
// migration runs only once the ones before it are built. Until then
// every app and node is the default tenant's, which has no quota.
func (d *DB) tenancyReady(ctx context.Context) (bool, error) {
	d.tenancyOnce.Do(func() {
		var v int
		v, d.tenancyErr = d.Version(ctx)
		d.tenancy = v >= tenantsVersion
	})
	return d.tenancy, d.tenancyErr
}

func (d *DB) needTenancy(ctx context.Context) error {
	ok, err := d.tenancyReady(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("tenants need the master's database at schema version %d, which this moat does not build yet: %w", tenantsVersion, errs.ErrUnavailable)
	}
	return nil
}

// AddTenant makes a tenant, without a quota.
func (d *DB) AddTenant(ctx context.Context, name string) (Tenant, error) {
	if err := ValidTenant(name); err != nil {
		return Tenant{}, err
	}
	if err := d.needTenancy(ctx); err != nil {
		return Tenant{}, err
	}
	t := Tenant{Name: name, Created: time.Now().UTC()}
	_, err := d.db.ExecContext(ctx, `INSERT INTO tenants (name, created) VALUES (?, ?)`, name, t.Created.Format(time.RFC3339Nano))
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return Tenant{}, fmt.Errorf("tenant %q exists already: %w", name, errs.ErrConflict)
	}
	return t, err
}

// Tenants returns every tenant, by name.
func (d *DB) Tenants(ctx context.Context) ([]Tenant, error) {
	ok, err := d.tenancyReady(ctx)
	if err != nil || !ok {
		return []Tenant{{Name: DefaultTenant}}, err
	}
	rows, err := d.db.QueryContext(ctx, `SELECT name, cpu, memory, replicas, apps, nodes, created FROM tenants ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Tenant{}
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// GetTenant returns one tenant.
func (d *DB) GetTenant(ctx context.Context, name string) (Tenant, error) {
	ok, err := d.tenancyReady(ctx)
	if err != nil {
		return Tenant{}, err
	}
	if !ok {
		if name == DefaultTenant {
			return Tenant{Name: DefaultTenant}, nil
		}
		return Tenant{}, fmt.Errorf("tenant %q: %w", name, errs.ErrNotFound)
	}
	row := d.db.QueryRowContext(ctx, `SELECT name, cpu, memory, replicas, apps, nodes, created FROM tenants WHERE name = ?`, name)
	t, err := scanTenant(row)
	return t, notFound(err, fmt.Sprintf("tenant %q", name))
}

func scanTenant(s scanner) (Tenant, error) {
	var t Tenant
	var cpu, mem, reps, apps, nodes sql.NullInt64
	var created string
	err := s.Scan(&t.Name, &cpu, &mem, &reps, &apps, &nodes, &created)
	t.Quota = Quota{limit(cpu), limit(mem), limit(reps), limit(apps), limit(nodes)}
	t.Created = parseTime(created)
	return t, err
}

func limit(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	return &n.Int64
}

// SetQuota replaces a tenant's quota.
func (d *DB) SetQuota(ctx context.Context, name string, q Quota) error {
	if err := d.needTenancy(ctx); err != nil {
		return err
	}
	for what, v := range map[string]*int64{"cpu": q.MilliCPU, "memory": q.MemoryBytes, "replicas": q.Replicas, "apps": q.Apps, "nodes": q.Nodes} {
		if v != nil && *v < 0 {
			return errs.Invalid(what, "%d: a quota cannot be negative", *v)
		}
	}
	res, err := d.db.ExecContext(ctx, `UPDATE tenants SET cpu = ?, memory = ?, replicas = ?, apps = ?, nodes = ? WHERE name = ?`,
		q.MilliCPU, q.MemoryBytes, q.Replicas, q.Apps, q.Nodes, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("tenant %q: %w", name, errs.ErrNotFound)
	}
	return nil
}

// RemoveTenant removes a tenant that holds nothing: never the default
// tenant, nor one that still has apps or nodes (they are named).
func (d *DB) RemoveTenant(ctx context.Context, name string) error {
	if name == DefaultTenant {
		return fmt.Errorf("the default tenant cannot be removed: %w", errs.ErrForbidden)
	}
	if err := d.needTenancy(ctx); err != nil {
		return err
	}
	return d.tx(ctx, func(tx *sql.Tx) error {
		var apps, nodes []string
		rows, err := tx.QueryContext(ctx, `SELECT name FROM apps WHERE name LIKE ? ESCAPE '\' ORDER BY name`, likePrefix(name+"."))
		if err != nil {
			return err
		}
		for rows.Next() {
			var key string
			rows.Scan(&key)
			_, app := SplitAppKey(key)
			apps = append(apps, app)
		}
		rows.Close()
		rows, err = tx.QueryContext(ctx, `SELECT node FROM node_tenants WHERE tenant = ? ORDER BY node`, name)
		if err != nil {
			return err
		}
		for rows.Next() {
			var n string
			rows.Scan(&n)
			nodes = append(nodes, n)
		}
		rows.Close()
		if len(apps)+len(nodes) > 0 {
			var held []string
			if len(apps) > 0 {
				held = append(held, "apps "+strings.Join(apps, ", "))
			}
			if len(nodes) > 0 {
				held = append(held, "nodes "+strings.Join(nodes, ", "))
			}
			return fmt.Errorf("tenant %q still holds %s: remove them first: %w", name, strings.Join(held, " and "), errs.ErrConflict)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM tenants WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("tenant %q: %w", name, errs.ErrNotFound)
		}
		return nil
	})
}

func likePrefix(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(p) + "%"
}

// putNodeTenant records a node's tenant within a node's write; "" is the
// default tenant. Before tenants exist (tenancy false) only the default
// tenant may be named.
func putNodeTenant(ctx context.Context, tx *sql.Tx, n Node, tenancy bool) error {
	tenant := n.Tenant
	if tenant == "" {
		tenant = DefaultTenant
	}
	if !tenancy {
		if tenant != DefaultTenant || n.Shared {
			return fmt.Errorf("node %s of tenant %q: tenants need the master's database at schema version %d, which this moat does not build yet: %w",
				n.Name, tenant, tenantsVersion, errs.ErrUnavailable)
		}
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO node_tenants (node, tenant, shared) VALUES (?, ?, ?)
		ON CONFLICT(node) DO UPDATE SET tenant = excluded.tenant, shared = excluded.shared`, n.Name, tenant, n.Shared)
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
		return fmt.Errorf("tenant %q: %w", tenant, errs.ErrNotFound)
	}
	return err
}

// nodeQuery is how readNodes and GetNode select nodes: with each one's
// tenant once tenants exist.
func (d *DB) nodeQuery(ctx context.Context, where string) (string, error) {
	ok, err := d.tenancyReady(ctx)
	if err != nil {
		return "", err
	}
	if !ok {
		return `SELECT name, addr, user, host_key, labels, operator, info, cordoned, draining, enrolled, 'default', 0 FROM nodes ` + where, nil
	}
	return `SELECT name, addr, user, host_key, labels, operator, info, cordoned, draining, enrolled,
		COALESCE(t.tenant, 'default'), COALESCE(t.shared, 0) FROM nodes LEFT JOIN node_tenants t ON t.node = nodes.name ` + where, nil
}

// TenantNodes is the names of the nodes that are a tenant's own (not
// those shared with it).
func TenantNodes(nodes []Node, tenant string) []string {
	var out []string
	for _, n := range nodes {
		if n.Tenant == tenant {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return out
}
