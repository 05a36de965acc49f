package master

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/clouds"
)

// Pools are named groups of nodes at one provider (store.Pool): this
// file is their API (moat pool, moat cost), their sealed tokens and the
// providers they open; the pool manager (pools_manager.go) makes and
// destroys their servers.

// poolState is what the master keeps of pools besides the database.
type poolState struct {
	sealer tokenSealer

	mu        sync.Mutex
	providers map[string]provider.Provider // by account (providerKey)
	prices    map[string]cachedPrices      // by account
}

// cachedPrices is an account's server types as last fetched.
type cachedPrices struct {
	types []provider.ServerType
	at    time.Time // when fetched
	tried time.Time // the last attempt, failed or not
	err   error
}

// Prices are kept an hour; a failed fetch is tried again after a minute
// (moat pool ls and moat cost must not hammer a provider that refuses).
const (
	pricesTTL        = time.Hour
	pricesRetry      = time.Minute
	pricesFetchLimit = 15 * time.Second
	maxTokenLen      = 4096
)

// providerKey names a pool's account: pools with the same provider,
// endpoint, state directory and token share one provider.
func providerKey(p store.Pool) string {
	sum := sha256.Sum256(p.TokenSealed)
	return strings.Join([]string{p.Provider, p.Endpoint, p.LocalDir, hex.EncodeToString(sum[:8])}, "\x00")
}

// poolToken opens a pool's API token ("" when it has none). For the pool
// manager; never logged, never answered.
func (m *Master) poolToken(p store.Pool) (string, error) {
	if len(p.TokenSealed) == 0 {
		return "", nil
	}
	aead, err := m.poolData.sealer.get(m.cfg.Dir)
	if err != nil {
		return "", err
	}
	return openToken(aead, p.Name, p.Provider, p.Endpoint, p.TokenSealed)
}

// withToken is p with its sealed token as stored, when p comes without
// it (a view that cleared it).
func (m *Master) withToken(p store.Pool) store.Pool {
	if len(p.TokenSealed) == 0 && (p.Provider == store.ProviderDigitalOcean || p.Provider == store.ProviderHetzner) {
		if row, err := m.db.GetPool(context.Background(), p.Name); err == nil && row.Provider == p.Provider && row.Endpoint == p.Endpoint {
			p.TokenSealed = row.TokenSealed
		}
	}
	return p
}

// openPool is a pool's provider, opened once per account.
func (m *Master) openPool(p store.Pool) (provider.Provider, error) {
	if !p.Cloud() {
		return nil, errs.Invalid("pool "+p.Name, "a static pool has no provider")
	}
	p = m.withToken(p)
	key := providerKey(p)
	m.poolData.mu.Lock()
	defer m.poolData.mu.Unlock()
	if pr, ok := m.poolData.providers[key]; ok {
		return pr, nil
	}
	token, err := m.poolToken(p)
	if err != nil {
		return nil, err
	}
	bin := m.cfg.MoatBinary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("pool %s: the moat binary its machines run: %w", p.Name, err)
		}
	}
	pr, err := clouds.Open(p.Provider, token, p.Endpoint, p.LocalDir, bin)
	if err != nil {
		return nil, fmt.Errorf("pool %s: open %s: %w", p.Name, p.Provider, err)
	}
	if m.poolData.providers == nil {
		m.poolData.providers = map[string]provider.Provider{}
	}
	m.poolData.providers[key] = pr
	return pr, nil
}

// poolTypes are the server types (with prices) a pool's account sells,
// fetched at most hourly; a stale list is better than none when the
// provider fails.
func (m *Master) poolTypes(ctx context.Context, p store.Pool) ([]provider.ServerType, error) {
	p = m.withToken(p)
	key := providerKey(p)
	m.poolData.mu.Lock()
	c, ok := m.poolData.prices[key]
	m.poolData.mu.Unlock()
	now := time.Now()
	if ok && (now.Sub(c.at) < pricesTTL || now.Sub(c.tried) < pricesRetry) {
		if c.types == nil && c.err != nil {
			return nil, c.err
		}
		return c.types, nil
	}
	pr, err := m.openPool(p)
	if err == nil {
		fctx, cancel := context.WithTimeout(ctx, pricesFetchLimit)
		var types []provider.ServerType
		types, err = pr.Types(fctx)
		cancel()
		if err == nil {
			c = cachedPrices{types: types, at: now}
		}
	}
	c.tried = now
	if err != nil {
		c.err = fmt.Errorf("pool %s: server types and prices: %w", p.Name, err)
		m.log.Warn("pool prices", "pool", p.Name, "provider", p.Provider, "err", err)
	}
	m.poolData.mu.Lock()
	if m.poolData.prices == nil {
		m.poolData.prices = map[string]cachedPrices{}
	}
	m.poolData.prices[key] = c
	m.poolData.mu.Unlock()
	if c.types == nil && c.err != nil {
		return nil, c.err
	}
	return c.types, nil
}

// forgetPoolAccount drops what is cached of a pool's account (its spec
// or token changed, or it was removed).
func (m *Master) forgetPoolAccount(p store.Pool) {
	m.poolData.mu.Lock()
	defer m.poolData.mu.Unlock()
	delete(m.poolData.providers, providerKey(p))
	delete(m.poolData.prices, providerKey(p))
}

// Pools lists the pools with their nodes and cost.
func (m *Master) Pools(ctx context.Context) ([]masterapi.Pool, error) {
	ps, err := m.db.Pools(ctx)
	if err != nil {
		return nil, err
	}
	in, err := m.costInputs(ctx, ps)
	if err != nil {
		return nil, err
	}
	cost := costTable(in, time.Time{})
	rows := map[string]masterapi.CostRow{}
	for _, r := range cost.Pools {
		rows[r.Pool] = r
	}
	cluster, err := m.db.ClusterID(ctx)
	if err != nil {
		return nil, err
	}
	servers, err := m.db.PoolServers(ctx, "")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]masterapi.Pool, 0, len(ps))
	for i, p := range ps {
		v := poolView(p, in[i].nodes)
		r := rows[p.Name]
		v.Monthly, v.Currency, v.Cluster = r.Monthly, r.Currency, cluster
		if p.Cloud() {
			if err := m.poolState(ctx, p, servers, now, &v); err != nil {
				return nil, err
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func poolView(p store.Pool, nodes int) masterapi.Pool {
	return masterapi.Pool{
		Name: p.Name, Provider: p.Provider, Min: p.Min, Max: p.Max, Desired: p.Desired, Nodes: nodes,
		Types: p.Types, Regions: p.Regions, Image: p.Image, Labels: p.Labels, Tenant: p.Tenant, Shared: p.Shared,
		Endpoint: p.Endpoint, LocalDir: p.LocalDir, IdleAfter: nodeapi.Duration(p.IdleAfter),
		KeepBilledHour: p.KeepBilledHour, MaxCreatesPerHour: p.MaxCreatesPerHour, TokenSet: len(p.TokenSealed) > 0,
		Removing: p.Removing, Created: p.Created, Updated: p.Updated,
	}
}

// AddPool adds a pool: defaults (desired = min, idle 10 minutes, billed
// hours kept, at most twice max creations an hour, the local provider's
// state under the master's directory), then checked whole.
func (m *Master) AddPool(ctx context.Context, s masterapi.PoolSpec, actor string) (masterapi.Pool, error) {
	p := store.Pool{Name: s.Name, Provider: s.Provider, IdleAfter: store.DefaultIdleAfter, KeepBilledHour: true}
	if s.Provider == "" {
		return masterapi.Pool{}, errs.Invalid("provider", "a pool needs one: %s", strings.Join(store.Providers, ", "))
	}
	if err := m.checkPoolTenant(ctx, s); err != nil {
		return masterapi.Pool{}, err
	}
	if err := m.applyPoolSpec(&p, s, true); err != nil {
		return masterapi.Pool{}, err
	}
	p, err := m.db.AddPool(ctx, p)
	if err != nil {
		return masterapi.Pool{}, err
	}
	m.log.Info("pool added", "pool", p.Name, "provider", p.Provider, "min", p.Min, "max", p.Max, "token", len(p.TokenSealed) > 0, "by", actor)
	m.kickPools()
	return poolView(p, 0), nil
}

// SetPool changes what s sets of a pool; a change that makes a bad pool
// changes nothing. Narrowing min..max brings desired within it.
func (m *Master) SetPool(ctx context.Context, s masterapi.PoolSpec, actor string) (masterapi.Pool, error) {
	if err := m.checkPoolTenant(ctx, s); err != nil {
		return masterapi.Pool{}, err
	}
	if err := m.checkAccountChange(ctx, s); err != nil {
		return masterapi.Pool{}, err
	}
	var before store.Pool
	p, err := m.db.UpdatePool(ctx, s.Name, func(p *store.Pool) error {
		before = *p
		if p.Removing {
			return fmt.Errorf("pool %s is being removed: %w", p.Name, errs.ErrConflict)
		}
		if s.Provider != "" && s.Provider != p.Provider {
			return errs.Invalid("provider", "pool %s is at %s: a pool's provider does not change (add another pool)", p.Name, p.Provider)
		}
		return m.applyPoolSpec(p, s, false)
	})
	if err != nil {
		return masterapi.Pool{}, err
	}
	if providerKey(before) != providerKey(p) {
		m.forgetPoolAccount(before)
	}
	m.log.Info("pool changed", "pool", p.Name, "fields", strings.Join(specFields(s), ","), "by", actor)
	m.kickPools()
	return m.onePool(ctx, p.Name)
}

func (m *Master) onePool(ctx context.Context, name string) (masterapi.Pool, error) {
	ps, err := m.Pools(ctx)
	if err != nil {
		return masterapi.Pool{}, err
	}
	for _, p := range ps {
		if p.Name == name {
			return p, nil
		}
	}
	return masterapi.Pool{}, fmt.Errorf("pool %s: %w", name, errs.ErrNotFound)
}

// specFields names the fields a spec sets (for the log: never values).
func specFields(s masterapi.PoolSpec) []string {
	var out []string
	for name, set := range map[string]bool{
		"min": s.Min != nil, "max": s.Max != nil, "desired": s.Desired != nil, "types": s.Types != nil,
		"regions": s.Regions != nil, "image": s.Image != nil, "labels": s.Labels != nil, "tenant": s.Tenant != nil,
		"shared": s.Shared != nil, "endpoint": s.Endpoint != nil, "local-dir": s.LocalDir != nil,
		"idle-after": s.IdleAfter != nil, "keep-billed-hour": s.KeepBilledHour != nil,
		"max-creates-per-hour": s.MaxCreatesPerHour != nil, "token": s.Token != nil,
	} {
		if set {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// checkPoolTenant refuses a spec naming a tenant that does not exist.
// Before UpdatePool: the database is not asked inside its transaction.
func (m *Master) checkPoolTenant(ctx context.Context, s masterapi.PoolSpec) error {
	if s.Tenant == nil || *s.Tenant == "" || *s.Tenant == store.DefaultTenant {
		return nil
	}
	if err := store.ValidTenant(*s.Tenant); err != nil {
		return err
	}
	if _, err := m.db.GetTenant(ctx, *s.Tenant); errors.Is(err, errs.ErrNotFound) {
		return errs.Invalid("tenant", "%q: no such tenant (moat tenant add %s)", *s.Tenant, *s.Tenant)
	} else if err != nil {
		return err
	}
	return nil
}

// applyPoolSpec sets on p what s sets, with defaults when adding; it
// asks nothing of the database (it runs inside UpdatePool's transaction).
func (m *Master) applyPoolSpec(p *store.Pool, s masterapi.PoolSpec, adding bool) error {
	oldMax, oldCap := p.Max, p.MaxCreatesPerHour
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.Min, s.Min)
	set(&p.Max, s.Max)
	set(&p.MaxCreatesPerHour, s.MaxCreatesPerHour)
	if s.Types != nil {
		p.Types = slices.Clone(*s.Types)
	}
	if s.Regions != nil {
		p.Regions = slices.Clone(*s.Regions)
	}
	if s.Image != nil {
		p.Image = *s.Image
	}
	if s.Labels != nil {
		p.Labels = maps.Clone(*s.Labels)
	}
	if s.Tenant != nil {
		p.Tenant = *s.Tenant
		if p.Tenant == store.DefaultTenant {
			p.Tenant = ""
		}
	}
	if s.Shared != nil {
		p.Shared = *s.Shared
	}
	if s.Endpoint != nil {
		// The token goes only where the one who gave it said: a new
		// endpoint needs the token given again (else a cluster admin who
		// never had the token could send it to a server of theirs).
		if *s.Endpoint != p.Endpoint && len(p.TokenSealed) > 0 && s.Token == nil {
			return errs.Invalid("endpoint", "pool %s's API token goes only to the endpoint it was given with: give it again with the new endpoint (--token-file or --token-env)", p.Name)
		}
		p.Endpoint = *s.Endpoint
	}
	if s.LocalDir != nil {
		p.LocalDir = *s.LocalDir
	}
	if s.IdleAfter != nil {
		p.IdleAfter = time.Duration(*s.IdleAfter)
	}
	if s.KeepBilledHour != nil {
		p.KeepBilledHour = *s.KeepBilledHour
	}
	// Desired: as given; else min on add; else brought within min..max.
	switch {
	case s.Desired != nil:
		p.Desired = *s.Desired
	case adding:
		p.Desired = p.Min
	default:
		p.Desired = min(max(p.Desired, p.Min), p.Max)
	}
	// The create cap follows max while it is the default.
	if s.MaxCreatesPerHour == nil && p.Cloud() && (adding || oldCap == store.DefaultCreatesPerHour(oldMax)) {
		p.MaxCreatesPerHour = store.DefaultCreatesPerHour(p.Max)
	}
	if adding && p.Provider == store.ProviderLocal && p.LocalDir == "" {
		p.LocalDir = filepath.Join(m.cfg.Dir, "pools", p.Name)
	}
	if s.Token != nil {
		if err := m.setPoolToken(p, *s.Token); err != nil {
			return err
		}
	}
	if adding && len(p.TokenSealed) == 0 && (p.Provider == store.ProviderDigitalOcean || p.Provider == store.ProviderHetzner) {
		return errs.Invalid("token", "a %s pool needs the provider's API token (moat pool add --token-file or --token-env)", p.Provider)
	}
	return store.ValidPool(*p)
}

// setPoolToken seals token into p ("" removes it). Errors never quote it.
func (m *Master) setPoolToken(p *store.Pool, token string) error {
	if token == "" {
		p.TokenSealed = nil
		return nil
	}
	if p.Provider == store.ProviderStatic || p.Provider == store.ProviderLocal {
		return errs.Invalid("token", "a %s pool takes no API token", p.Provider)
	}
	if len(token) > maxTokenLen || strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return errs.Invalid("token", "the API token given (%d bytes) holds spaces or control characters or is over %d bytes: give it on one line", len(token), maxTokenLen)
	}
	aead, err := m.poolData.sealer.get(m.cfg.Dir)
	if err != nil {
		return err
	}
	if p.TokenSealed, err = sealToken(aead, p.Name, p.Provider, p.Endpoint, token); err != nil {
		return fmt.Errorf("seal pool %s's token: %w", p.Name, err)
	}
	return nil
}

// RemovePool removes a pool. One without nodes or servers goes at once;
// a cloud pool with some is marked removing (min and desired 0): the pool
// manager drains and destroys them, then removes it. A static pool's
// machines are not moat's to destroy: their nodes are removed first.
func (m *Master) RemovePool(ctx context.Context, name, actor string) (masterapi.PoolRemoval, error) {
	p, err := m.db.GetPool(ctx, name)
	if err != nil {
		return masterapi.PoolRemoval{}, err
	}
	if name == store.StaticPool {
		return masterapi.PoolRemoval{}, m.db.RemovePool(ctx, name) // refused, saying why
	}
	nodes, err := m.poolNodes(ctx, name)
	if err != nil {
		return masterapi.PoolRemoval{}, err
	}
	servers := 0
	if p.Cloud() {
		ss, err := m.db.PoolServers(ctx, name)
		if err != nil {
			return masterapi.PoolRemoval{}, err
		}
		servers = len(ss)
	}
	if !p.Cloud() && len(nodes) > 0 {
		return masterapi.PoolRemoval{}, fmt.Errorf("pool %s holds nodes moat did not create (%s): remove them first with moat node rm: %w",
			name, strings.Join(nodes, ", "), errs.ErrConflict)
	}
	if len(nodes) == 0 && servers == 0 {
		if err := m.db.RemovePool(ctx, name); err != nil {
			return masterapi.PoolRemoval{}, err
		}
		m.forgetPoolAccount(p)
		m.log.Info("pool removed", "pool", name, "by", actor)
		return masterapi.PoolRemoval{Removed: true}, nil
	}
	if _, err := m.db.UpdatePool(ctx, name, func(p *store.Pool) error {
		p.Removing, p.Min, p.Desired = true, 0, 0
		return nil
	}); err != nil {
		return masterapi.PoolRemoval{}, err
	}
	m.log.Info("pool removing", "pool", name, "nodes", len(nodes), "servers", servers, "by", actor)
	m.kickPools()
	return masterapi.PoolRemoval{Draining: max(len(nodes), servers)}, nil
}

// poolNodes are the names of the nodes in a pool.
func (m *Master) poolNodes(ctx context.Context, pool string) ([]string, error) {
	ns, err := m.db.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range ns {
		if store.NodePool(n.Labels) == pool {
			out = append(out, n.Name)
		}
	}
	return out, nil
}

// ScalePools sets the size pools want, all or none.
func (m *Master) ScalePools(ctx context.Context, s masterapi.PoolScale, actor string) ([]masterapi.Pool, error) {
	if len(s.Desired) == 0 {
		return nil, errs.Invalid("desired", "no pool named: moat pool scale POOL=N")
	}
	if err := m.db.SetPoolDesired(ctx, s.Desired); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(s.Desired)) {
		m.log.Info("pool scaled", "pool", name, "desired", s.Desired[name], "by", actor)
	}
	m.kickPools()
	ps, err := m.Pools(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ps, func(p masterapi.Pool) bool { _, ok := s.Desired[p.Name]; return !ok }), nil
}

// Cost is the monthly estimate per pool and tenant, of the pools the
// caller sees: its tenant's, or every one for a caller acting in every
// tenant, root on the master's socket and the master itself.
func (m *Master) Cost(ctx context.Context) (masterapi.Cost, error) {
	ps, err := m.db.Pools(ctx)
	if err != nil {
		return masterapi.Cost{}, err
	}
	c, ok := access.CallerFrom(ctx)
	all := !ok || c.Tenant == AllTenants || (c.Local && c.Tenant == "")
	ps = slices.DeleteFunc(ps, func(p store.Pool) bool { return !all && poolTenant(p) != callerTenant(ctx) })
	in, err := m.costInputs(ctx, ps)
	if err != nil {
		return masterapi.Cost{}, err
	}
	// What costs nothing is left out (moat pool ls shows every pool).
	in = slices.DeleteFunc(in, func(c costPool) bool { return c.nodes == 0 && len(c.servers) == 0 })
	var oldest time.Time
	m.poolData.mu.Lock()
	for _, p := range ps {
		if c, ok := m.poolData.prices[providerKey(p)]; ok && !c.at.IsZero() && (oldest.IsZero() || c.at.Before(oldest)) {
			oldest = c.at
		}
	}
	m.poolData.mu.Unlock()
	return costTable(in, oldest), nil
}

func poolTenant(p store.Pool) string {
	if p.Tenant == "" {
		return store.DefaultTenant
	}
	return p.Tenant
}

// costPool is what the estimate of one pool is made of.
type costPool struct {
	pool     store.Pool
	nodes    int          // nodes enrolled in it
	servers  []costServer // a cloud pool's servers
	types    []provider.ServerType
	typesErr error
}

type costServer struct{ typ, region string }

// costInputs gathers, per pool in order, its nodes, servers and prices
// (fetched only for pools that have servers).
func (m *Master) costInputs(ctx context.Context, ps []store.Pool) ([]costPool, error) {
	ns, err := m.db.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	nodes := map[string]int{}
	for _, n := range ns {
		nodes[store.NodePool(n.Labels)]++
	}
	ss, err := m.db.PoolServers(ctx, "")
	if err != nil {
		return nil, err
	}
	servers := map[string][]costServer{}
	for _, s := range ss {
		if s.State != store.ServerDestroying {
			servers[s.Pool] = append(servers[s.Pool], costServer{s.Type, s.Region})
		}
	}
	out := make([]costPool, len(ps))
	for i, p := range ps {
		out[i] = costPool{pool: p, nodes: nodes[p.Name], servers: servers[p.Name]}
		if p.Cloud() && len(out[i].servers) > 0 {
			out[i].types, out[i].typesErr = m.poolTypes(ctx, p)
		}
	}
	return out, nil
}

// hoursPerMonth turns an hourly price into a monthly one when a
// provider lists only that (730 h: a year's hours over 12).
const hoursPerMonth = 730

// priceOf is a server type's monthly price in a region: the type listed
// for that region, else one listed everywhere (or, for a server of no
// region, a local pool's, the first listed); false when unlisted.
func priceOf(types []provider.ServerType, name, region string) (float64, string, bool) {
	var found *provider.ServerType
	for i, t := range types {
		if t.Name != name {
			continue
		}
		if slices.Contains(t.Regions, region) {
			found = &types[i]
			break
		}
		if (len(t.Regions) == 0 || region == "") && found == nil {
			found = &types[i]
		}
	}
	if found == nil {
		return 0, "", false
	}
	if found.Monthly > 0 || found.Hourly == 0 {
		return found.Monthly, found.Currency, true
	}
	return found.Hourly * hoursPerMonth, found.Currency, true
}

// costTable is moat cost: per pool, its servers priced by type and
// region (a static pool's machines, or a type the provider does not
// list, are unpriced: counted, not summed); per tenant and currency the
// sums; totals per currency. Pure.
func costTable(in []costPool, prices time.Time) masterapi.Cost {
	out := masterapi.Cost{Pools: []masterapi.CostRow{}, Tenants: []masterapi.CostRow{}, Totals: map[string]float64{}, Prices: prices}
	type tkey struct{ tenant, currency string }
	tenants := map[tkey]*masterapi.CostRow{}
	for _, c := range in {
		p := c.pool
		row := masterapi.CostRow{Pool: p.Name, Provider: p.Provider, Tenant: poolTenant(p)}
		switch {
		case !p.Cloud():
			row.Nodes, row.Unpriced = c.nodes, c.nodes
			if c.nodes > 0 {
				row.Note = "machines moat did not create: their price is not known"
			}
		default:
			row.Nodes = len(c.servers)
			sum, priced := 0.0, 0
			for _, s := range c.servers {
				v, cur, ok := priceOf(c.types, s.typ, s.region)
				if !ok || (row.Currency != "" && cur != row.Currency) {
					row.Unpriced++
					continue
				}
				row.Currency, sum, priced = cur, sum+v, priced+1
			}
			switch {
			case row.Nodes == 0:
				zero := 0.0
				row.Monthly = &zero
			case priced > 0:
				row.Monthly = &sum
			}
			switch {
			case c.typesErr != nil && row.Unpriced > 0:
				row.Note = "prices not known: " + c.typesErr.Error()
			case row.Unpriced > 0:
				row.Note = fmt.Sprintf("%d servers of a type or region the provider does not list", row.Unpriced)
			}
		}
		out.Pools = append(out.Pools, row)
		k := tkey{row.Tenant, row.Currency}
		t := tenants[k]
		if t == nil {
			t = &masterapi.CostRow{Tenant: row.Tenant, Currency: row.Currency}
			tenants[k] = t
		}
		t.Nodes += row.Nodes
		t.Unpriced += row.Unpriced
		if row.Monthly != nil {
			v := *row.Monthly
			if t.Monthly != nil {
				v += *t.Monthly
			}
			t.Monthly = &v
			if row.Currency != "" {
				out.Totals[row.Currency] += *row.Monthly
			}
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(tenants), func(a, b tkey) int {
		return strings.Compare(a.tenant+"\x00"+a.currency, b.tenant+"\x00"+b.currency)
	}) {
		out.Tenants = append(out.Tenants, *tenants[k])
	}
	return out
}

// checkNodePool refuses a node registered through the API into a pool
// moat does not let it join: one that does not exist, or a cloud pool
// (whose nodes only the pool manager registers, with no API caller); and
// under the name of a pool's server, whose row it would overwrite (the
// pool would then destroy its server, and leave the operator's row).
func (m *Master) checkNodePool(ctx context.Context, node string, labels map[string]string) error {
	if _, api := access.CallerFrom(ctx); !api {
		return nil
	}
	if s, err := m.db.GetPoolServer(ctx, node); err == nil {
		return fmt.Errorf("node %s is pool %s's server: moat makes and enrols it (moat pool scale %s=N; moat node rm %s retires it): %w",
			node, s.Pool, s.Pool, node, errs.ErrConflict)
	} else if !errors.Is(err, errs.ErrNotFound) {
		return err
	}
	name := store.NodePool(labels)
	if name == store.StaticPool {
		return nil
	}
	p, err := m.db.GetPool(ctx, name)
	if errors.Is(err, errs.ErrNotFound) {
		return errs.Invalid("label", "%s=%s: no such pool (moat pool add %s --provider static)", store.PoolLabel, name, name)
	}
	if err != nil {
		return err
	}
	if p.Cloud() {
		return errs.Invalid("label", "%s=%s: a %s pool's nodes are created by moat, not added", store.PoolLabel, name, p.Provider)
	}
	return nil
}

// poolOffer is what a pool can buy, in its order of preference: for each
// of its types, as the account sells it in the first of its regions that
// has it (a type listed for every region fits any); a type the account
// does not sell, or sells in none of the pool's regions, is left out. A
// pool without regions (local) takes a type wherever it is listed. Pure:
// the autoscaler simulates placement on these, the pool manager creates
// them in this order.
func poolOffer(types []provider.ServerType, p store.Pool) []provider.ServerType {
	var out []provider.ServerType
	for _, name := range p.Types {
		var pick *provider.ServerType
		if len(p.Regions) == 0 {
			for i := range types {
				if types[i].Name == name {
					pick = &types[i]
					break
				}
			}
		}
		for _, region := range p.Regions {
			for i := range types {
				if types[i].Name == name && (len(types[i].Regions) == 0 || slices.Contains(types[i].Regions, region)) {
					pick = &types[i]
					break
				}
			}
			if pick != nil {
				break
			}
		}
		if pick != nil {
			out = append(out, *pick)
		}
	}
	return out
}

// poolOffered is poolOffer on the account's types as last fetched
// (poolTypes: at most hourly).
func (m *Master) poolOffered(ctx context.Context, p store.Pool) ([]provider.ServerType, error) {
	types, err := m.poolTypes(ctx, p)
	if err != nil {
		return nil, err
	}
	return poolOffer(types, p), nil
}

// kickPools wakes the pool manager (a pool or its size changed) and the
// reconciler.
func (m *Master) kickPools() {
	if m.poolMgr != nil {
		m.poolMgr.kickPools()
	}
	m.kickReconcile()
}

// poolState fills in a cloud pool's servers, its loop breaker and the
// manager's last error.
func (m *Master) poolState(ctx context.Context, p store.Pool, servers []store.PoolServer, now time.Time, v *masterapi.Pool) error {
	for _, s := range servers {
		if s.Pool == p.Name {
			v.Servers = append(v.Servers, masterapi.PoolServer{Name: s.Name, ID: s.ProviderID, Type: s.Type, Region: s.Region,
				State: s.State, Created: s.Created, LastError: s.LastError})
		}
	}
	cs, err := m.db.PoolCreations(ctx, p.Name, now.Add(-time.Hour))
	if err != nil {
		return err
	}
	b := breaker(cs, p.MaxCreatesPerHour, now)
	v.CreatesLastHour = b.Calls
	if b.Open {
		v.Breaker = fmt.Sprintf("open: %d create calls in the last hour (max %d); the next at %s",
			b.Calls, p.MaxCreatesPerHour, b.Until.UTC().Format(time.RFC3339))
	}
	if pm := m.poolMgr; pm != nil {
		pm.mu.Lock()
		v.LastError = pm.lastErr[p.Name]
		pm.mu.Unlock()
	}
	return nil
}

// noPoolOfTenant refuses to remove a tenant a pool makes nodes for.
func (m *Master) noPoolOfTenant(ctx context.Context, tenant string) error {
	ps, err := m.db.Pools(ctx)
	if err != nil {
		return err
	}
	var of []string
	for _, p := range ps {
		if p.Tenant == tenant {
			of = append(of, p.Name)
		}
	}
	if len(of) > 0 {
		return fmt.Errorf("tenant %s: pools %s make nodes for it: moat pool rm them or moat pool set --tenant first: %w",
			tenant, strings.Join(of, ", "), errs.ErrConflict)
	}
	return nil
}

// accountCheckLimit bounds the look at a new account (one listing).
const accountCheckLimit = 30 * time.Second

// checkAccountChange refuses to move a pool that has servers to another
// account (a token, endpoint or state directory that does not see them):
// its servers would answer "not found" there, be forgotten as gone and
// stay billed where no orphan pass looks. A new token of the same
// project (a rotation) lists them all, and is taken.
func (m *Master) checkAccountChange(ctx context.Context, s masterapi.PoolSpec) error {
	if s.Token == nil && s.Endpoint == nil && s.LocalDir == nil {
		return nil
	}
	cur, err := m.db.GetPool(ctx, s.Name)
	if err != nil || !cur.Cloud() {
		return err
	}
	next := cur
	if err := m.applyPoolSpec(&next, s, false); err != nil {
		return err // UpdatePool would refuse it the same way
	}
	oldToken, err := m.poolToken(cur)
	if err != nil {
		oldToken = "\x00unreadable" // cannot be the same account as a token given
	}
	newToken, err := m.poolToken(next)
	if err != nil {
		return err
	}
	if oldToken == newToken && cur.Endpoint == next.Endpoint && cur.LocalDir == next.LocalDir {
		return nil
	}
	servers, err := m.db.PoolServers(ctx, s.Name)
	if err != nil || len(servers) == 0 {
		return err
	}
	bin := m.cfg.MoatBinary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return err
		}
	}
	prov, err := clouds.Open(next.Provider, newToken, next.Endpoint, next.LocalDir, bin)
	if err != nil {
		return fmt.Errorf("pool %s: the new account: %w", s.Name, err)
	}
	cluster, err := m.db.ClusterID(ctx)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, accountCheckLimit)
	defer cancel()
	listed, err := prov.List(lctx, map[string]string{provider.LabelCluster: cluster, provider.LabelPool: s.Name})
	if err != nil {
		return fmt.Errorf("pool %s has servers: the new account must list them, and listing failed: %w", s.Name, err)
	}
	ids, names := map[string]bool{}, map[string]bool{}
	for _, l := range listed {
		ids[l.ID], names[l.Name] = true, true
	}
	var missing []string
	for _, srv := range servers {
		if srv.ProviderID != "" && !ids[srv.ProviderID] || srv.ProviderID == "" && !names[srv.Name] {
			missing = append(missing, srv.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("pool %s: its servers %s are not in the account the new token, endpoint or directory opens: they would be forgotten and stay billed; empty the pool first (moat pool set %s --min 0, moat pool scale %s=0, or moat pool rm %s), then change its account: %w",
			s.Name, strings.Join(missing, ", "), s.Name, s.Name, s.Name, errs.ErrConflict)
	}
	return nil
}
