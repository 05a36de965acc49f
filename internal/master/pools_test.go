package master

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/provider"
	hfake "github.com/moatcloud/moat/internal/provider/hetzner/fake"
)

func fp(v float64) *float64 { return &v }

// TestCostTable: servers priced by type and region; static machines and
// unlisted types counted, not summed; tenants and totals per currency.
func TestCostTable(t *testing.T) {
	hetzner := []provider.ServerType{
		{Name: "cx22", Regions: []string{"fsn1"}, Monthly: 4.51, Currency: "EUR"},
		{Name: "cx22", Regions: []string{"ash"}, Monthly: 5.49, Currency: "EUR"},
		{Name: "cx32", Regions: []string{"fsn1"}, Hourly: 0.0113, Currency: "EUR"}, // hourly only
	}
	do := []provider.ServerType{{Name: "s-1vcpu-1gb", Regions: []string{"fra1", "ams3"}, Monthly: 6, Currency: "USD"}}
	pool := func(name, prov, tenant string) store.Pool {
		return store.Pool{Name: name, Provider: prov, Tenant: tenant}
	}
	for _, c := range []struct {
		name string
		in   []costPool
		want masterapi.Cost
	}{
		{"empty", nil, masterapi.Cost{Pools: []masterapi.CostRow{}, Tenants: []masterapi.CostRow{}, Totals: map[string]float64{}}},
		{"static", []costPool{{pool: pool("static", "static", ""), nodes: 3}}, masterapi.Cost{
			Pools:   []masterapi.CostRow{{Pool: "static", Provider: "static", Tenant: "default", Nodes: 3, Unpriced: 3, Note: "machines moat did not create: their price is not known"}},
			Tenants: []masterapi.CostRow{{Tenant: "default", Nodes: 3, Unpriced: 3}},
			Totals:  map[string]float64{},
		}},
		{"by region, hourly, unlisted", []costPool{{pool: pool("web", "hetzner", "shop"), types: hetzner, servers: []costServer{
			{"cx22", "fsn1"}, {"cx22", "ash"}, {"cx32", "fsn1"}, {"cx52", "fsn1"},
		}}}, masterapi.Cost{
			Pools: []masterapi.CostRow{{Pool: "web", Provider: "hetzner", Tenant: "shop", Nodes: 4, Monthly: fp(4.51 + 5.49 + 0.0113*730), Currency: "EUR",
				Unpriced: 1, Note: "1 servers of a type or region the provider does not list"}},
			Tenants: []masterapi.CostRow{{Tenant: "shop", Nodes: 4, Monthly: fp(4.51 + 5.49 + 0.0113*730), Currency: "EUR", Unpriced: 1}},
			Totals:  map[string]float64{"EUR": 4.51 + 5.49 + 0.0113*730},
		}},
		{"local: no region", []costPool{{pool: pool("try", "local", ""), types: []provider.ServerType{{Name: "local-1", Regions: []string{"local"}, Currency: "USD"}},
			servers: []costServer{{"local-1", ""}}}}, masterapi.Cost{
			Pools:   []masterapi.CostRow{{Pool: "try", Provider: "local", Tenant: "default", Nodes: 1, Monthly: fp(0), Currency: "USD"}},
			Tenants: []masterapi.CostRow{{Tenant: "default", Nodes: 1, Monthly: fp(0), Currency: "USD"}},
			Totals:  map[string]float64{"USD": 0},
		}},
		{"no servers costs 0", []costPool{{pool: pool("idle", "digitalocean", "")}}, masterapi.Cost{
			Pools:   []masterapi.CostRow{{Pool: "idle", Provider: "digitalocean", Tenant: "default", Monthly: fp(0)}},
			Tenants: []masterapi.CostRow{{Tenant: "default", Monthly: fp(0)}},
			Totals:  map[string]float64{},
		}},
		{"prices unknown", []costPool{{pool: pool("web", "hetzner", ""), typesErr: errors.New("401"), servers: []costServer{{"cx22", "fsn1"}}}}, masterapi.Cost{
			Pools:   []masterapi.CostRow{{Pool: "web", Provider: "hetzner", Tenant: "default", Nodes: 1, Unpriced: 1, Note: "prices not known: 401"}},
			Tenants: []masterapi.CostRow{{Tenant: "default", Nodes: 1, Unpriced: 1}},
			Totals:  map[string]float64{},
		}},
		{"tenants and currencies", []costPool{
			{pool: pool("a", "digitalocean", "shop"), types: do, servers: []costServer{{"s-1vcpu-1gb", "fra1"}, {"s-1vcpu-1gb", "ams3"}}},
			{pool: pool("b", "hetzner", "shop"), types: hetzner, servers: []costServer{{"cx22", "fsn1"}}},
			{pool: pool("c", "digitalocean", "blog"), types: do, servers: []costServer{{"s-1vcpu-1gb", "fra1"}}},
			{pool: pool("static", "static", ""), nodes: 1},
		}, masterapi.Cost{
			Pools: []masterapi.CostRow{
				{Pool: "a", Provider: "digitalocean", Tenant: "shop", Nodes: 2, Monthly: fp(12), Currency: "USD"},
				{Pool: "b", Provider: "hetzner", Tenant: "shop", Nodes: 1, Monthly: fp(4.51), Currency: "EUR"},
				{Pool: "c", Provider: "digitalocean", Tenant: "blog", Nodes: 1, Monthly: fp(6), Currency: "USD"},
				{Pool: "static", Provider: "static", Tenant: "default", Nodes: 1, Unpriced: 1, Note: "machines moat did not create: their price is not known"},
			},
			Tenants: []masterapi.CostRow{
				{Tenant: "blog", Nodes: 1, Monthly: fp(6), Currency: "USD"},
				{Tenant: "default", Nodes: 1, Unpriced: 1},
				{Tenant: "shop", Nodes: 1, Monthly: fp(4.51), Currency: "EUR"},
				{Tenant: "shop", Nodes: 2, Monthly: fp(12), Currency: "USD"},
			},
			Totals: map[string]float64{"USD": 18, "EUR": 4.51},
		}},
	} {
		got := costTable(c.in, time.Time{})
		if d := cmp.Diff(c.want, got, cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, d)
		}
	}
}

// poolsMaster is a master opened on a fresh state, not running.
func poolsMaster(t *testing.T) *Master {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "master")
	if _, _, err := Init(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{Dir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.db.Close() })
	return m
}

func ptr[T any](v T) *T { return &v }

// TestPoolToken: the token is sealed with a key file beside the master's
// key (0600), bound to its pool; the database file holds no trace of
// it; the API says only that one is set.
func TestPoolToken(t *testing.T) {
	m := poolsMaster(t)
	ctx := context.Background()
	const token = "hcloud-TOKEN-0123456789abcdefghij"
	p, err := m.AddPool(ctx, masterapi.PoolSpec{Name: "web", Provider: "hetzner", Max: ptr(3), Types: ptr([]string{"cx22"}),
		Regions: ptr([]string{"fsn1"}), Token: ptr(token)}, "root")
	if err != nil {
		t.Fatal(err)
	}
	if !p.TokenSet || p.MaxCreatesPerHour != 6 || p.Desired != 0 || time.Duration(p.IdleAfter) != 10*time.Minute || !p.KeepBilledHour {
		t.Errorf("added: %+v", p)
	}
	st, err := os.Stat(filepath.Join(m.cfg.Dir, PoolTokenKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the key file: %v %v", st, err)
	}
	row, err := m.db.GetPool(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.poolToken(row); got != token || err != nil {
		t.Errorf("poolToken = %q, %v", got, err)
	}
	// A sealed token moved to another pool's row does not open there.
	moved := row
	moved.Name = "other"
	if _, err := m.poolToken(moved); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("a token moved to another pool: %v", err)
	}
	// Nor with its endpoint changed in the database.
	moved = row
	moved.Endpoint = "https://attacker.example"
	if _, err := m.poolToken(moved); err == nil {
		t.Error("a token opened for another endpoint")
	}
	// Through the API, a new endpoint needs the token again.
	if _, err := m.SetPool(ctx, masterapi.PoolSpec{Name: "web", Endpoint: ptr("https://attacker.example")}, "root"); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "endpoint") {
		t.Errorf("endpoint changed without the token: %v", err)
	}
	p, err = m.SetPool(ctx, masterapi.PoolSpec{Name: "web", Endpoint: ptr("http://127.0.0.1:9/v1"), Token: ptr(token + "2")}, "root")
	if err != nil || p.Endpoint != "http://127.0.0.1:9/v1" {
		t.Fatalf("endpoint changed with a token: %+v %v", p, err)
	}
	if row, _ = m.db.GetPool(ctx, "web"); true {
		if got, err := m.poolToken(row); got != token+"2" || err != nil {
			t.Errorf("the new token: %q %v", got, err)
		}
	}
	// Another master's key does not open it either.
	other := poolsMaster(t)
	if _, err := other.poolToken(row); err == nil {
		t.Error("another master's key opened the token")
	}
	m.db.Close()
	for _, f := range []string{DBFile, DBFile + "-wal", DBFile + "-shm"} {
		b, err := os.ReadFile(filepath.Join(m.cfg.Dir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(b), token) || strings.Contains(string(b), token[7:20]) {
			t.Errorf("%s holds the token", f)
		}
	}
}

// TestPoolSpecs: what add and set do with a spec: defaults, the cap
// following max, desired brought within min..max, the tenant checked,
// bad specs refused naming the field and changing nothing.
func TestPoolSpecs(t *testing.T) {
	m := poolsMaster(t)
	ctx := context.Background()
	add := func(s masterapi.PoolSpec) (masterapi.Pool, error) { return m.AddPool(ctx, s, "root") }
	set := func(s masterapi.PoolSpec) (masterapi.Pool, error) { return m.SetPool(ctx, s, "root") }
	p, err := add(masterapi.PoolSpec{Name: "try", Provider: "local", Min: ptr(1), Max: ptr(4), Types: ptr([]string{"local-1"})})
	if err != nil {
		t.Fatal(err)
	}
	if p.Desired != 1 || p.MaxCreatesPerHour != 8 || p.LocalDir != filepath.Join(m.cfg.Dir, "pools", "try") || p.TokenSet {
		t.Errorf("local pool added: %+v", p)
	}
	for _, c := range []struct {
		name  string
		spec  masterapi.PoolSpec
		field string
	}{
		{"no provider", masterapi.PoolSpec{Name: "x", Max: ptr(1), Types: ptr([]string{"a"})}, "provider"},
		{"no token", masterapi.PoolSpec{Name: "x", Provider: "digitalocean", Max: ptr(1), Types: ptr([]string{"s-1"}), Regions: ptr([]string{"fra1"})}, "token"},
		{"local token", masterapi.PoolSpec{Name: "x", Provider: "local", Max: ptr(1), Types: ptr([]string{"a"}), Token: ptr("t")}, "token"},
		{"token spaces", masterapi.PoolSpec{Name: "x", Provider: "hetzner", Max: ptr(1), Types: ptr([]string{"a"}), Regions: ptr([]string{"fsn1"}), Token: ptr("a b")}, "token"},
		{"no such tenant", masterapi.PoolSpec{Name: "x", Provider: "local", Max: ptr(1), Types: ptr([]string{"a"}), Tenant: ptr("nosuch")}, "tenant"},
		{"no max", masterapi.PoolSpec{Name: "x", Provider: "local", Types: ptr([]string{"a"})}, "max"},
		{"exists", masterapi.PoolSpec{Name: "try", Provider: "local", Max: ptr(1), Types: ptr([]string{"a"})}, "exists"},
	} {
		if _, err := add(c.spec); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("add %s: %v, want an error naming %s", c.name, err, c.field)
		}
	}
	// Narrowing max brings desired down; the default cap follows max.
	if _, err := m.ScalePools(ctx, masterapi.PoolScale{Desired: map[string]int{"try": 4}}, "root"); err != nil {
		t.Fatal(err)
	}
	p, err = set(masterapi.PoolSpec{Name: "try", Max: ptr(2)})
	if err != nil || p.Desired != 2 || p.MaxCreatesPerHour != 4 {
		t.Errorf("set max 2: %+v %v", p, err)
	}
	// An explicit cap stays when max changes.
	if p, err = set(masterapi.PoolSpec{Name: "try", MaxCreatesPerHour: ptr(3)}); err != nil || p.MaxCreatesPerHour != 3 {
		t.Errorf("set cap: %+v %v", p, err)
	}
	if p, err = set(masterapi.PoolSpec{Name: "try", Max: ptr(10)}); err != nil || p.MaxCreatesPerHour != 3 {
		t.Errorf("set max 10: %+v %v", p, err)
	}
	before, _ := m.db.GetPool(ctx, "try")
	for _, c := range []struct {
		name  string
		spec  masterapi.PoolSpec
		field string
	}{
		{"provider", masterapi.PoolSpec{Name: "try", Provider: "hetzner"}, "provider"},
		{"min over max", masterapi.PoolSpec{Name: "try", Min: ptr(11)}, "min"},
		{"no types", masterapi.PoolSpec{Name: "try", Types: ptr([]string{})}, "type"},
		{"label", masterapi.PoolSpec{Name: "try", Labels: ptr(map[string]string{"moat-pool": "x"})}, "label"},
		{"idle", masterapi.PoolSpec{Name: "try", IdleAfter: ptr(nodeapi.Duration(0))}, "idle-after"},
		{"no such pool", masterapi.PoolSpec{Name: "nosuch", Max: ptr(3)}, "nosuch"},
	} {
		if _, err := set(c.spec); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("set %s: %v, want an error naming %s", c.name, err, c.field)
		}
	}
	if after, _ := m.db.GetPool(ctx, "try"); !cmp.Equal(before, after) {
		t.Errorf("refused sets changed the pool:\n%s", cmp.Diff(before, after))
	}
	// Removing a pool without nodes removes it at once.
	if rm, err := m.RemovePool(ctx, "try", "root"); err != nil || !rm.Removed {
		t.Errorf("rm: %+v %v", rm, err)
	}
	if _, err := m.RemovePool(ctx, "static", "root"); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("rm static: %v", err)
	}
}

// TestPoolOffer: the pool's types in its order, each as sold in the first
// of its regions that has it; unsold types left out.
func TestPoolOffer(t *testing.T) {
	types := []provider.ServerType{
		{Name: "cx22", Regions: []string{"nbg1"}, Monthly: 4.6},
		{Name: "cx22", Regions: []string{"fsn1"}, Monthly: 4.5},
		{Name: "cx32", Regions: []string{"hel1"}, Monthly: 8},
		{Name: "s-1", Monthly: 6}, // everywhere
		{Name: "local-1", Regions: []string{"local"}},
	}
	names := func(ts []provider.ServerType) string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name+"@"+strings.Join(t.Regions, "+"))
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		types, regions []string
		want           string
	}{
		{[]string{"cx22"}, []string{"fsn1", "nbg1"}, "cx22@fsn1"},
		{[]string{"cx22"}, []string{"nbg1", "fsn1"}, "cx22@nbg1"},
		{[]string{"cx32", "cx22"}, []string{"fsn1"}, "cx22@fsn1"},
		{[]string{"cx32", "cx22"}, []string{"hel1", "fsn1"}, "cx32@hel1 cx22@fsn1"},
		{[]string{"s-1", "nosuch"}, []string{"fra1"}, "s-1@"},
		{[]string{"local-1"}, nil, "local-1@local"},
		{[]string{"nosuch"}, nil, ""},
	} {
		got := names(poolOffer(types, store.Pool{Types: c.types, Regions: c.regions}))
		if got != c.want {
			t.Errorf("types %v regions %v: %q, want %q", c.types, c.regions, got, c.want)
		}
	}
}

// TestCostFromProvider: moat cost prices a hetzner pool's servers from
// the prices the (fake) API lists, by type and location; the prices are
// kept, so a provider gone away still gives the estimate; the token is
// the one the pool sealed.
func TestCostFromProvider(t *testing.T) {
	f, err := hfake.New(&provider.MemoryMachines{}, hfake.Options{Token: "fake-token-abc"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := poolsMaster(t)
	ctx := context.Background()
	if _, err := m.AddPool(ctx, masterapi.PoolSpec{Name: "web", Provider: "hetzner", Max: ptr(4), Types: ptr([]string{"cx22", "cx32"}),
		Regions: ptr([]string{"fsn1"}), Endpoint: ptr(f.URL()), Token: ptr(f.Token())}, "root"); err != nil {
		t.Fatal(err)
	}
	for i, typ := range []string{"cx22", "cx22", "cx32"} {
		s := store.PoolServer{Name: fmt.Sprintf("web-%d", i), Pool: "web", Type: typ, Region: "fsn1", State: store.ServerReady, Created: time.Now()}
		if _, err := m.db.RecordCreateIntent(ctx, s, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	gone := store.PoolServer{Name: "web-9", Pool: "web", Type: "cx32", Region: "fsn1", State: store.ServerDestroying, Created: time.Now()}
	if _, err := m.db.RecordCreateIntent(ctx, gone, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := 2*4.51 + 8.09 // hetzner fake's DefaultTypes in fsn1
	check := func(when string) {
		c, err := m.Cost(ctx) // root on the socket: every pool
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if len(c.Pools) != 1 || c.Pools[0].Nodes != 3 || c.Pools[0].Monthly == nil || math.Abs(*c.Pools[0].Monthly-want) > 1e-6 ||
			c.Pools[0].Currency != "EUR" || math.Abs(c.Totals["EUR"]-want) > 1e-6 || c.Prices.IsZero() {
			t.Errorf("%s: cost %+v", when, c)
		}
		ps, err := m.Pools(ctx)
		if err != nil || len(ps) != 2 || ps[1].Name != "web" || ps[1].Monthly == nil || math.Abs(*ps[1].Monthly-want) > 1e-6 {
			t.Errorf("%s: pools %+v %v", when, ps, err)
		}
	}
	check("fetched")
	// A view of the pool without its sealed token (the pool manager's)
	// still opens the account: the token is read back from the store.
	bare := mustPool(t, m, "web")
	bare.TokenSealed = nil
	m.forgetPoolAccount(mustPool(t, m, "web"))
	if types, err := m.poolTypes(ctx, bare); err != nil || len(types) == 0 {
		t.Errorf("types of a pool given without its token: %v %v", types, err)
	}
	f.Close()
	check("cached")
	offer, err := m.poolOffered(ctx, mustPool(t, m, "web"))
	if err != nil || len(offer) != 2 || offer[0].Name != "cx22" || offer[1].Name != "cx32" {
		t.Errorf("offer: %+v %v", offer, err)
	}
}

func mustPool(t *testing.T, m *Master, name string) store.Pool {
	t.Helper()
	p, err := m.db.GetPool(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckNodePool: a node added through the API joins the static pool
// or another static pool; a cloud pool's or an unknown pool's label is
// refused; the pool manager (no API caller) registers cloud pool nodes.
func TestCheckNodePool(t *testing.T) {
	m := poolsMaster(t)
	ctx := context.Background()
	for _, s := range []masterapi.PoolSpec{
		{Name: "boxes", Provider: "static"},
		{Name: "try", Provider: "local", Max: ptr(2), Types: ptr([]string{"local-1"})},
	} {
		if _, err := m.AddPool(ctx, s, "root"); err != nil {
			t.Fatal(err)
		}
	}
	api := access.WithCaller(ctx, access.Caller{User: "boss"})
	for _, c := range []struct {
		ctx   context.Context
		pool  string
		field string // "" allowed
	}{
		{api, "", ""},
		{api, "static", ""},
		{api, "boxes", ""},
		{api, "try", "created by moat"},
		{api, "nosuch", "no such pool"},
		{ctx, "try", ""},
	} {
		labels := map[string]string{"zone": "eu"}
		if c.pool != "" {
			labels[store.PoolLabel] = c.pool
		}
		err := m.checkNodePool(c.ctx, "n1", labels)
		if c.field == "" && err != nil || c.field != "" && (!errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.field)) {
			t.Errorf("pool %q (api %v): %v, want %q", c.pool, c.ctx != ctx, err, c.field)
		}
	}
	// Under the name of a pool's server: refused to an API caller (it
	// would overwrite the pool node's row), the pool manager's own passes.
	s := store.PoolServer{Name: "try-abc123", Pool: "try", Type: "local-1", State: store.ServerEnrolling, Created: time.Now()}
	if _, err := m.db.RecordCreateIntent(ctx, s, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := m.checkNodePool(api, "try-abc123", nil); !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "pool try's server") {
		t.Errorf("node add under a pool server's name: %v", err)
	}
	if err := m.checkNodePool(ctx, "try-abc123", map[string]string{store.PoolLabel: "try"}); err != nil {
		t.Errorf("the pool manager registering its server: %v", err)
	}
}

// TestCostByTenant: a tenant's users see their tenant's pools' cost;
// a caller in every tenant and root on the socket see every pool's.
func TestCostByTenant(t *testing.T) {
	m := poolsMaster(t)
	ctx := context.Background()
	if _, err := m.db.AddTenant(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []masterapi.PoolSpec{
		{Name: "a", Provider: "local", Max: ptr(2), Types: ptr([]string{"local-1"}), Tenant: ptr("shop")},
		{Name: "b", Provider: "local", Max: ptr(2), Types: ptr([]string{"local-1"})},
	} {
		if _, err := m.AddPool(ctx, s, "root"); err != nil {
			t.Fatal(err)
		}
		s := store.PoolServer{Name: s.Name + "-x", Pool: s.Name, Type: "local-1", State: store.ServerReady, Created: time.Now()}
		if _, err := m.db.RecordCreateIntent(ctx, s, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.RemoveTenant(ctx, "shop", "root"); !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "pools a") {
		t.Errorf("removing a tenant a pool makes nodes for: %v", err)
	}
	for _, c := range []struct {
		caller *access.Caller
		want   string
	}{
		{nil, "a b"},
		{&access.Caller{User: "root", Local: true}, "a b"},
		{&access.Caller{User: "boss", Tenant: AllTenants}, "a b"},
		{&access.Caller{User: "v", Tenant: "shop"}, "a"},
		{&access.Caller{User: "v", Tenant: "default"}, "b"},
		{&access.Caller{User: "v", Tenant: "blog"}, ""},
	} {
		cctx := ctx
		if c.caller != nil {
			cctx = access.WithCaller(ctx, *c.caller)
		}
		cost, err := m.Cost(cctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range cost.Pools {
			got = append(got, r.Pool)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("caller %+v sees %v, want %q", c.caller, got, c.want)
		}
	}
}

// TestAccountChange: a pool with servers keeps its account: a new token
// the same project takes (it lists every server) is taken; an endpoint
// or token of another account is refused naming the servers, changing
// nothing; a pool without servers changes account freely.
func TestAccountChange(t *testing.T) {
	ctx := context.Background()
	a, err := hfake.New(&provider.MemoryMachines{}, hfake.Options{Token: "token-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := hfake.New(&provider.MemoryMachines{}, hfake.Options{Token: "token-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := poolsMaster(t)
	if _, err := m.AddPool(ctx, masterapi.PoolSpec{Name: "web", Provider: "hetzner", Max: ptr(2), Types: ptr([]string{"cx22"}),
		Regions: ptr([]string{"fsn1"}), Endpoint: ptr(a.URL()), Token: ptr("token-a")}, "root"); err != nil {
		t.Fatal(err)
	}
	// Without servers, anything goes (and back).
	if _, err := m.SetPool(ctx, masterapi.PoolSpec{Name: "web", Endpoint: ptr(b.URL()), Token: ptr("token-b")}, "root"); err != nil {
		t.Fatalf("moving an empty pool: %v", err)
	}
	if _, err := m.SetPool(ctx, masterapi.PoolSpec{Name: "web", Endpoint: ptr(a.URL()), Token: ptr("token-a")}, "root"); err != nil {
		t.Fatalf("moving it back: %v", err)
	}
	// A server in account a, recorded as the pool manager records one.
	cluster, err := m.db.ClusterID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := m.openPool(mustPool(t, m, "web"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pr.Create(ctx, provider.CreateRequest{Name: "web-abc123", Type: "cx22", Region: "fsn1", Image: "debian-12",
		Labels: map[string]string{provider.LabelCluster: cluster, provider.LabelPool: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	row := store.PoolServer{Name: srv.Name, Pool: "web", Type: "cx22", Region: "fsn1", State: store.ServerReady, Created: time.Now()}
	if _, err := m.db.RecordCreateIntent(ctx, row, time.Now()); err != nil {
		t.Fatal(err)
	}
	// While its id is not recorded it is looked for by name; then by id.
	for _, id := range []string{"", srv.ID} {
		row.ProviderID = id
		if err := m.db.PutPoolServer(ctx, row); err != nil {
			t.Fatal(err)
		}
		// The same project's token again: taken.
		if _, err := m.SetPool(ctx, masterapi.PoolSpec{Name: "web", Token: ptr("token-a")}, "root"); err != nil {
			t.Errorf("id %q: a new token of the same account: %v", id, err)
		}
		before := mustPool(t, m, "web")
		for _, c := range []masterapi.PoolSpec{
			{Name: "web", Endpoint: ptr(b.URL()), Token: ptr("token-b")},
			{Name: "web", Token: ptr("token-b")}, // refused by a's API: listing fails
		} {
			if _, err := m.SetPool(ctx, c, "root"); err == nil || !strings.Contains(err.Error(), "web") || strings.Contains(err.Error(), "token-") {
				t.Errorf("id %q: moving a pool with a server to another account (%+v): %v", id, c, err)
			}
		}
		if after := mustPool(t, m, "web"); after.Endpoint != before.Endpoint || !bytesEqual(after.TokenSealed, before.TokenSealed) {
			t.Errorf("id %q: a refused move changed the pool", id)
		}
	}
	if _, err := m.SetPool(ctx, masterapi.PoolSpec{Name: "web", Endpoint: ptr(b.URL()), Token: ptr("token-b")}, "root"); !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "web-abc123") {
		t.Errorf("the refusal names the server: %v", err)
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }
