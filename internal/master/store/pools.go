package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// poolsV10: see migrations in store.go. Pools: named groups of nodes,
// each at one provider, with its size bounds, the size wanted (desired:
// what moat pool scale or the autoscaler set), its server types and
// regions in order of preference, the image its servers boot, what its
// nodes are labelled with and whose they are. The provider's API token
// is here sealed only (token_sealed): the key that opens it is a file
// beside the master's key, so a copy of the database leaks no token.
// The built-in pool "static" holds the nodes moat node add enrols.
const poolsV10 = `CREATE TABLE pools (
		name                 TEXT PRIMARY KEY,
		provider             TEXT NOT NULL,
		min                  INTEGER NOT NULL DEFAULT 0,
		max                  INTEGER NOT NULL DEFAULT 0,
		desired              INTEGER NOT NULL DEFAULT 0,
		types                TEXT NOT NULL DEFAULT '[]',
		regions              TEXT NOT NULL DEFAULT '[]',
		image                TEXT NOT NULL DEFAULT '',
		labels               TEXT NOT NULL DEFAULT '{}',
		tenant               TEXT NOT NULL DEFAULT '',
		shared               INTEGER NOT NULL DEFAULT 0,
		endpoint             TEXT NOT NULL DEFAULT '',
		local_dir            TEXT NOT NULL DEFAULT '',
		idle_after           INTEGER NOT NULL DEFAULT 600000000000,
		keep_billed_hour     INTEGER NOT NULL DEFAULT 1,
		max_creates_per_hour INTEGER NOT NULL DEFAULT 4,
		token_sealed         BLOB,
		removing             INTEGER NOT NULL DEFAULT 0,
		created              TEXT NOT NULL,
		updated              TEXT NOT NULL
	);
	INSERT INTO pools (name, provider, created, updated) VALUES ('static', 'static',
		strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));`

// The providers a pool can be at.
const (
	ProviderStatic       = "static"
	ProviderLocal        = "local"
	ProviderDigitalOcean = "digitalocean"
	ProviderHetzner      = "hetzner"
)

// Providers are the providers a pool can be at, in the order docs list them.
var Providers = []string{ProviderStatic, ProviderLocal, ProviderDigitalOcean, ProviderHetzner}

// StaticPool is the built-in pool of the nodes moat node add enrols: a
// node whose labels name no pool (PoolLabel) is in it.
const StaticPool = "static"

// PoolLabel is the node label naming a node's pool (provider.LabelPool):
// the master sets it on the nodes it creates; moat node add --pool sets
// it on a static pool's.
const PoolLabel = "moat-pool"

// Pool defaults and bounds.
const (
	DefaultIdleAfter = 10 * time.Minute
	// MaxPoolSize bounds max: a typo must not be able to buy a thousand
	// servers.
	MaxPoolSize = 500
	// MinCreatesPerHour is the least DefaultCreatesPerHour gives.
	MinCreatesPerHour = 4
)

// DefaultCreatesPerHour is a pool's cap on server creations per hour
// when none is given: twice its max, at least MinCreatesPerHour.
func DefaultCreatesPerHour(size int) int { return max(2*size, MinCreatesPerHour) }

// Pool is a pool as the store keeps it.
type Pool struct {
	Name     string
	Provider string // one of Providers
	// Min and Max bound Desired, the size wanted (moat pool scale, the
	// autoscaler). A static pool's are 0: its size is the nodes added.
	Min, Max, Desired int
	Types             []string // server types, in order of preference
	Regions           []string // regions or locations, in order
	Image             string   // what servers boot (moat pool image)
	Labels            map[string]string
	Tenant            string // whose replicas its nodes run; "" the default tenant
	Shared            bool   // its nodes run every tenant's replicas
	Endpoint          string // the provider API's base URL, when not the provider's own
	LocalDir          string // the local provider's state directory
	IdleAfter         time.Duration
	KeepBilledHour    bool // keep an idle hourly-billed server until its hour is nearly over
	MaxCreatesPerHour int  // the loop breaker's cap
	TokenSealed       []byte
	// Removing: moat pool rm was asked while it had servers; the pool
	// manager retires them all, then removes the pool.
	Removing bool
	Created  time.Time
	Updated  time.Time
}

// Cloud says whether moat creates the pool's servers (every provider
// but static).
func (p Pool) Cloud() bool { return p.Provider != ProviderStatic }

var poolNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]{0,23}$`) })

// labelKeyRE: a node label's key, as placement matches it.
var labelKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$`) })

// ValidPool checks a pool, naming the field that is wrong.
func ValidPool(p Pool) error {
	if !poolNameRE().MatchString(p.Name) {
		// A server's name is POOL-XXXXXX: a hostname at every provider.
		return errs.Invalid("name", "%q: want 1 to 24 lowercase letters, digits and '-', starting with a letter", p.Name)
	}
	if !slices.Contains(Providers, p.Provider) {
		return errs.Invalid("provider", "%q: want one of %s", p.Provider, strings.Join(Providers, ", "))
	}
	if !p.Cloud() {
		switch {
		case p.Min != 0 || p.Max != 0 || p.Desired != 0:
			return errs.Invalid("min", "a static pool's size is the nodes moat node add enrolled in it: no min, max or desired")
		case len(p.Types) > 0:
			return errs.Invalid("type", "a static pool has no server types")
		case len(p.Regions) > 0:
			return errs.Invalid("region", "a static pool has no regions")
		case p.Image != "":
			return errs.Invalid("image", "a static pool has no image")
		case p.Endpoint != "" || len(p.TokenSealed) > 0:
			return errs.Invalid("endpoint", "a static pool has no provider API")
		case p.LocalDir != "":
			return errs.Invalid("local-dir", "only a local pool has a state directory")
		}
	}
	if p.Cloud() {
		if p.Min < 0 {
			return errs.Invalid("min", "%d: want 0 or more", p.Min)
		}
		if p.Max < 1 || p.Max > MaxPoolSize {
			return errs.Invalid("max", "%d: want 1 to %d", p.Max, MaxPoolSize)
		}
		if p.Min > p.Max {
			return errs.Invalid("min", "%d is above max %d", p.Min, p.Max)
		}
		if p.Desired < p.Min || p.Desired > p.Max {
			return errs.Invalid("desired", "%d: want %d to %d (min to max)", p.Desired, p.Min, p.Max)
		}
		if len(p.Types) == 0 {
			return errs.Invalid("type", "a %s pool needs at least one server type", p.Provider)
		}
		if p.Provider != ProviderLocal && len(p.Regions) == 0 {
			return errs.Invalid("region", "a %s pool needs at least one region", p.Provider)
		}
		if p.LocalDir != "" && p.Provider != ProviderLocal {
			return errs.Invalid("local-dir", "only a local pool has a state directory")
		}
		if p.LocalDir != "" && !filepath.IsAbs(p.LocalDir) {
			return errs.Invalid("local-dir", "%q: want an absolute path", p.LocalDir)
		}
		if p.MaxCreatesPerHour < 1 {
			return errs.Invalid("max-creates-per-hour", "%d: want 1 or more", p.MaxCreatesPerHour)
		}
	}
	for field, list := range map[string][]string{"type": p.Types, "region": p.Regions} {
		for i, v := range list {
			if !labelKeyRE().MatchString(v) {
				return errs.Invalid(field, "%q: want letters, digits, '.', '_', '-' or '/'", v)
			}
			if slices.Index(list, v) != i {
				return errs.Invalid(field, "%q given twice", v)
			}
		}
	}
	if len(p.Image) > 255 || strings.ContainsAny(p.Image, " \t\r\n") {
		return errs.Invalid("image", "%q: want an image id or name", p.Image)
	}
	for k, v := range p.Labels {
		if !labelKeyRE().MatchString(k) {
			return errs.Invalid("label", "key %q: want letters, digits, '.', '_', '-' or '/', at most 63", k)
		}
		if k == PoolLabel {
			return errs.Invalid("label", "%s is set by moat to the pool's name", PoolLabel)
		}
		if len(v) > 255 || strings.ContainsAny(v, "\r\n") {
			return errs.Invalid("label", "%s: value too long or on several lines", k)
		}
	}
	if p.Tenant != "" {
		if err := ValidTenant(p.Tenant); err != nil {
			return err
		}
	}
	if p.Endpoint != "" {
		u, err := url.Parse(p.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errs.Invalid("endpoint", "%q: want an http(s) URL", p.Endpoint)
		}
	}
	if p.IdleAfter < time.Second {
		return errs.Invalid("idle-after", "%s: want 1s or more", p.IdleAfter)
	}
	return nil
}

const poolColumns = `name, provider, min, max, desired, types, regions, image, labels, tenant, shared,
	endpoint, local_dir, idle_after, keep_billed_hour, max_creates_per_hour, token_sealed, removing, created, updated`

// AddPool records a new pool.
func (d *DB) AddPool(ctx context.Context, p Pool) (Pool, error) {
	if err := ValidPool(p); err != nil {
		return Pool{}, err
	}
	p.Created = time.Now().UTC()
	p.Updated = p.Created
	p.Removing = false
	_, err := d.db.ExecContext(ctx, `INSERT INTO pools (`+poolColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, poolArgs(p)...)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return Pool{}, fmt.Errorf("pool %q exists already: %w", p.Name, errs.ErrConflict)
	}
	if err != nil {
		return Pool{}, fmt.Errorf("add pool %s: %w", p.Name, err)
	}
	return p, nil
}

func poolArgs(p Pool) []any {
	types, _ := json.Marshal(nonNil(p.Types))
	regions, _ := json.Marshal(nonNil(p.Regions))
	labels := p.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	lj, _ := json.Marshal(labels)
	return []any{p.Name, p.Provider, p.Min, p.Max, p.Desired, string(types), string(regions), p.Image, string(lj), p.Tenant, p.Shared,
		p.Endpoint, p.LocalDir, int64(p.IdleAfter), p.KeepBilledHour, p.MaxCreatesPerHour, p.TokenSealed, p.Removing,
		p.Created.UTC().Format(time.RFC3339Nano), p.Updated.UTC().Format(time.RFC3339Nano)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func scanPool(s scanner) (Pool, error) {
	var p Pool
	var types, regions, labels, created, updated string
	var idle int64
	err := s.Scan(&p.Name, &p.Provider, &p.Min, &p.Max, &p.Desired, &types, &regions, &p.Image, &labels, &p.Tenant, &p.Shared,
		&p.Endpoint, &p.LocalDir, &idle, &p.KeepBilledHour, &p.MaxCreatesPerHour, &p.TokenSealed, &p.Removing, &created, &updated)
	if err != nil {
		return Pool{}, err
	}
	p.IdleAfter = time.Duration(idle)
	p.Created, p.Updated = parseTime(created), parseTime(updated)
	if err := json.Unmarshal([]byte(types), &p.Types); err != nil {
		return Pool{}, fmt.Errorf("pool %s: types: %w", p.Name, err)
	}
	if err := json.Unmarshal([]byte(regions), &p.Regions); err != nil {
		return Pool{}, fmt.Errorf("pool %s: regions: %w", p.Name, err)
	}
	if err := json.Unmarshal([]byte(labels), &p.Labels); err != nil {
		return Pool{}, fmt.Errorf("pool %s: labels: %w", p.Name, err)
	}
	if len(p.Types) == 0 {
		p.Types = nil
	}
	if len(p.Regions) == 0 {
		p.Regions = nil
	}
	if len(p.Labels) == 0 {
		p.Labels = nil
	}
	return p, nil
}

// Pools returns every pool, by name.
func (d *DB) Pools(ctx context.Context) ([]Pool, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+poolColumns+` FROM pools ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("pools: %w", err)
	}
	defer rows.Close()
	var out []Pool
	for rows.Next() {
		p, err := scanPool(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// GetPool returns one pool.
func (d *DB) GetPool(ctx context.Context, name string) (Pool, error) {
	p, err := scanPool(d.db.QueryRowContext(ctx, `SELECT `+poolColumns+` FROM pools WHERE name = ?`, name))
	return p, notFound(err, "pool "+name)
}

// UpdatePool changes a pool in one transaction: change is given the pool
// as stored and edits it; the result is checked (ValidPool) before it is
// written, so a change that makes a bad pool changes nothing. Its name
// and created time cannot change.
func (d *DB) UpdatePool(ctx context.Context, name string, change func(*Pool) error) (Pool, error) {
	var out Pool
	err := d.tx(ctx, func(tx *sql.Tx) error {
		p, err := scanPool(tx.QueryRowContext(ctx, `SELECT `+poolColumns+` FROM pools WHERE name = ?`, name))
		if err != nil {
			return notFound(err, "pool "+name)
		}
		created := p.Created
		if err := change(&p); err != nil {
			return err
		}
		p.Name, p.Created, p.Updated = name, created, time.Now().UTC()
		if err := ValidPool(p); err != nil {
			return fmt.Errorf("pool %s: %w", name, err)
		}
		args := poolArgs(p)
		_, err = tx.ExecContext(ctx, `UPDATE pools SET provider = ?, min = ?, max = ?, desired = ?, types = ?, regions = ?, image = ?,
			labels = ?, tenant = ?, shared = ?, endpoint = ?, local_dir = ?, idle_after = ?, keep_billed_hour = ?,
			max_creates_per_hour = ?, token_sealed = ?, removing = ?, updated = ? WHERE name = ?`,
			append(args[1:18], args[19], name)...)
		out = p
		return err
	})
	return out, err
}

// SetPoolDesired sets the size pools want, all or none: a size outside
// a pool's min..max, a static pool or one being removed changes nothing.
func (d *DB) SetPoolDesired(ctx context.Context, desired map[string]int) error {
	names := make([]string, 0, len(desired))
	for n := range desired {
		names = append(names, n)
	}
	slices.Sort(names)
	return d.tx(ctx, func(tx *sql.Tx) error {
		for _, name := range names {
			n := desired[name]
			p, err := scanPool(tx.QueryRowContext(ctx, `SELECT `+poolColumns+` FROM pools WHERE name = ?`, name))
			if err != nil {
				return notFound(err, "pool "+name)
			}
			switch {
			case !p.Cloud():
				return errs.Invalid("pool "+name, "a static pool's size is the nodes moat node add enrolled in it")
			case p.Removing:
				return fmt.Errorf("pool %s is being removed: %w", name, errs.ErrConflict)
			case n < p.Min || n > p.Max:
				return errs.Invalid("pool "+name, "%d: want %d to %d (its min to max; moat pool set %s --min/--max changes them)", n, p.Min, p.Max, name)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE pools SET desired = ?, updated = ? WHERE name = ?`, n, now(), name); err != nil {
				return err
			}
		}
		return nil
	})
}

// RemovePool deletes a pool's row; the static pool stays.
func (d *DB) RemovePool(ctx context.Context, name string) error {
	if name == StaticPool {
		return errs.Invalid("pool", "%s is built in: it holds the nodes moat node add enrols", StaticPool)
	}
	res, err := d.db.ExecContext(ctx, `DELETE FROM pools WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("remove pool %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("pool %s: %w", name, errs.ErrNotFound)
	}
	return nil
}

// NodePool is the pool a node with these labels is in.
func NodePool(labels map[string]string) string {
	if p := labels[PoolLabel]; p != "" {
		return p
	}
	return StaticPool
}
