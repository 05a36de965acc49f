package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/spec"
)

// memCloud is a provider in memory for the pool manager's own tests: it
// counts its calls and fails as told. The end-to-end tests use the local
// cloud and the fake DigitalOcean and Hetzner APIs.
type memCloud struct {
	mu      sync.Mutex
	next    int
	servers map[string]provider.Server
	calls   map[string]int
	// capacity: types answered with a capacity error; fail: types whose
	// create fails otherwise; hang: a create that makes the server then
	// waits for its context (the answer is lost); boot: whether servers
	// come to run.
	capacity, fail map[string]bool
	hang           bool
	noBoot         bool
	// onCreate, if set, runs at the start of every create call.
	onCreate func(provider.CreateRequest)
}

func newMemCloud() *memCloud {
	return &memCloud{servers: map[string]provider.Server{}, calls: map[string]int{}, capacity: map[string]bool{}, fail: map[string]bool{}}
}

func (c *memCloud) count(what string) {
	c.mu.Lock()
	c.calls[what]++
	c.mu.Unlock()
}

func (c *memCloud) Calls(what string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[what]
}

func (c *memCloud) Kind() string { return "mem" }
func (c *memCloud) Types(context.Context) ([]provider.ServerType, error) {
	c.count("types")
	return nil, nil
}

func (c *memCloud) Create(ctx context.Context, req provider.CreateRequest) (provider.Server, error) {
	c.count("create")
	c.mu.Lock()
	if f := c.onCreate; f != nil {
		c.mu.Unlock()
		f(req)
		c.mu.Lock()
	}
	if c.capacity[req.Type] {
		c.mu.Unlock()
		return provider.Server{}, fmt.Errorf("create %s: %w", req.Name, provider.ErrCapacity)
	}
	if c.fail[req.Type] {
		c.mu.Unlock()
		return provider.Server{}, fmt.Errorf("create %s: invalid server type", req.Name)
	}
	c.next++
	s := provider.Server{ID: strconv.Itoa(c.next), Name: req.Name, Type: req.Type, Region: req.Region, Image: req.Image,
		Labels: maps.Clone(req.Labels), Status: provider.Running, IPv4: "192.0.2.1", Created: time.Now()}
	if c.noBoot {
		s.Status = provider.Pending
	}
	c.servers[s.ID] = s
	hang := c.hang
	c.mu.Unlock()
	if hang {
		<-ctx.Done()
		return provider.Server{}, ctx.Err()
	}
	return s, nil
}

func (c *memCloud) Get(_ context.Context, id string) (provider.Server, error) {
	c.count("get")
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.servers[id]
	if !ok {
		return s, fmt.Errorf("server %s: %w", id, provider.ErrNotFound)
	}
	return s, nil
}

func (c *memCloud) List(_ context.Context, labels map[string]string) ([]provider.Server, error) {
	c.count("list")
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []provider.Server
	for _, s := range c.servers {
		ok := true
		for k, v := range labels {
			ok = ok && s.Labels[k] == v
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, nil
}

func (c *memCloud) Destroy(_ context.Context, id string) error {
	c.count("destroy")
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.servers, id)
	return nil
}

// add puts a server there behind moat's back.
func (c *memCloud) add(name string, labels map[string]string, created time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	id := strconv.Itoa(c.next)
	c.servers[id] = provider.Server{ID: id, Name: name, Labels: labels, Status: provider.Running, Created: created}
	return id
}

func (c *memCloud) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.servers))
}

// poolTest is a master's state (no Run: the test makes the passes) with
// one local-kind pool whose provider is a memCloud, and enrolment
// replaced by registering the node's row.
type poolTest struct {
	t     *testing.T
	m     *Master
	pm    *poolManager
	cloud *memCloud
	ctx   context.Context
	stop  context.CancelFunc
}

func newPoolTest(t *testing.T, set PoolSettings, pool store.Pool) *poolTest {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "master")
	if _, _, err := Init(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{Dir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.MetricsStore().Close(); m.db.Close() })
	pool.Provider, pool.LocalDir = store.ProviderLocal, "/nonexistent/pool-test"
	if pool.Types == nil {
		pool.Types = []string{"small", "big"}
	}
	pool.IdleAfter = store.DefaultIdleAfter
	if pool.MaxCreatesPerHour == 0 {
		pool.MaxCreatesPerHour = 20
	}
	if _, err := m.db.AddPool(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	pt := &poolTest{t: t, m: m, cloud: newMemCloud()}
	pt.restart(set)
	return pt
}

// restart replaces the pool manager, as a new master process would: what
// the old one had under way is stopped (its context ends) first.
func (pt *poolTest) restart(set PoolSettings) {
	if pt.stop != nil {
		pt.stop()
		pt.pm.wg.Wait()
	}
	pt.ctx, pt.stop = context.WithCancel(context.Background())
	pt.t.Cleanup(func() { pt.stop(); pt.pm.wg.Wait() })
	pt.pm = newPoolManager(pt.m, set)
	pt.m.poolMgr = pt.pm
	pt.pm.open = func(context.Context, store.Pool) (provider.Provider, error) { return pt.cloud, nil }
	pt.pm.bring = func(ctx context.Context, p store.Pool, s *store.PoolServer, prov provider.Provider) error {
		srv, err := pt.pm.waitRunning(ctx, prov, s.ProviderID, false)
		if err != nil {
			return err
		}
		if err := pt.m.db.PutNode(ctx, store.Node{Name: s.Name, Addr: srv.IPv4 + ":22", User: "root", HostKey: s.HostKey,
			Labels: map[string]string{store.PoolLabel: p.Name}, Enrolled: time.Now()}); err != nil {
			return err
		}
		s.State = store.ServerReady
		return pt.m.db.PutPoolServer(ctx, *s)
	}
}

// until makes passes until ok holds.
func (pt *poolTest) until(what string, ok func([]store.PoolServer) bool) []store.PoolServer {
	pt.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pt.pm.pass(pt.ctx)
		servers, err := pt.m.db.PoolServers(context.Background(), "")
		if err != nil {
			pt.t.Fatal(err)
		}
		if ok(servers) {
			return servers
		}
		if time.Now().After(deadline) {
			pt.t.Fatalf("%s: not within 20s: servers %+v, cloud %v", what, servers, pt.cloud.ids())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (pt *poolTest) setDesired(n int) {
	pt.t.Helper()
	if err := pt.m.db.SetPoolDesired(context.Background(), map[string]int{"web": n}); err != nil {
		pt.t.Fatal(err)
	}
}

func readyCount(servers []store.PoolServer) int {
	n := 0
	for _, s := range servers {
		if s.State == store.ServerReady {
			n++
		}
	}
	return n
}

// sameServers checks that the cloud holds exactly the servers moat knows.
func (pt *poolTest) sameServers() {
	pt.t.Helper()
	rows, _ := pt.m.db.PoolServers(context.Background(), "")
	var known []string
	for _, s := range rows {
		if s.ProviderID != "" {
			known = append(known, s.ProviderID)
		}
	}
	slices.Sort(known)
	if got := pt.cloud.ids(); !slices.Equal(got, known) {
		pt.t.Errorf("the cloud holds %v, moat knows %v", got, known)
	}
}

var fastPools = PoolSettings{Interval: 10 * time.Millisecond, BootDeadline: 2 * time.Second, CreateTimeout: 300 * time.Millisecond,
	OrphanEvery: 10 * time.Millisecond, OrphanGrace: 500 * time.Millisecond, GoneTimeout: 2 * time.Second, CreateBackoff: time.Millisecond}

// TestPoolManagerScales: min 1 gives one ready server; desired 3 three;
// desired 1 retires two (node removed, server destroyed, row forgotten).
func TestPoolManagerScales(t *testing.T) {
	pt := newPoolTest(t, fastPools, store.Pool{Name: "web", Min: 1, Max: 4, Desired: 1})
	pt.until("one ready", func(s []store.PoolServer) bool { return len(s) == 1 && readyCount(s) == 1 })
	if n := pt.cloud.Calls("create"); n != 1 {
		t.Errorf("%d create calls for one server", n)
	}
	pt.setDesired(3)
	pt.until("three ready", func(s []store.PoolServer) bool { return len(s) == 3 && readyCount(s) == 3 })
	pt.setDesired(1)
	rows := pt.until("one left", func(s []store.PoolServer) bool { return len(s) == 1 && readyCount(s) == 1 })
	nodes, _ := pt.m.db.Nodes(context.Background())
	if len(nodes) != 1 || nodes[0].Name != rows[0].Name {
		t.Errorf("nodes after scaling down: %+v", nodes)
	}
	pt.sameServers()
	if n := pt.cloud.Calls("create"); n != 3 {
		t.Errorf("%d create calls for three servers", n)
	}
}

// TestPoolManagerCapacity: a capacity error on the first type moves to
// the next; the creation log says so.
func TestPoolManagerCapacity(t *testing.T) {
	pt := newPoolTest(t, fastPools, store.Pool{Name: "web", Min: 1, Max: 2, Desired: 1})
	pt.cloud.capacity["small"] = true
	rows := pt.until("one ready", func(s []store.PoolServer) bool { return readyCount(s) == 1 })
	if rows[0].Type != "big" {
		t.Errorf("created a %s, want big", rows[0].Type)
	}
	cs, _ := pt.m.db.PoolCreations(context.Background(), "web", time.Time{})
	var outcomes []string
	for _, c := range cs {
		outcomes = append(outcomes, c.Type+":"+c.Outcome)
	}
	if !slices.Equal(outcomes, []string{"small:capacity", "big:created"}) {
		t.Errorf("creations %v", outcomes)
	}
	pt.sameServers()
}

// TestPoolManagerBreaker: a type that always fails is called at most the
// cap, whatever the passes; the view says the breaker is open.
func TestPoolManagerBreaker(t *testing.T) {
	pt := newPoolTest(t, fastPools, store.Pool{Name: "web", Min: 2, Max: 2, Desired: 2, Types: []string{"bad"}, MaxCreatesPerHour: 3})
	pt.cloud.fail["bad"] = true
	for range 50 {
		pt.pm.pass(pt.ctx)
	}
	pt.pm.wg.Wait()
	for range 20 {
		pt.pm.pass(pt.ctx)
	}
	pt.pm.wg.Wait()
	if n := pt.cloud.Calls("create"); n != 3 {
		t.Errorf("%d create calls, want the cap 3", n)
	}
	views, err := pt.m.poolViews(context.Background())
	if err != nil || len(views) != 1 || !views[0].BreakerOpen || views[0].CreatesLastHour != 3 || views[0].LastError == "" {
		t.Errorf("view %+v, %v", views, err)
	}
	pt.sameServers()
}

// TestPoolManagerNeverBoots: a server that never runs is destroyed past
// the boot deadline and the next creation tries elsewhere; at most the cap
// of servers is ever made.
func TestPoolManagerNeverBoots(t *testing.T) {
	set := fastPools
	set.BootDeadline = 300 * time.Millisecond
	pt := newPoolTest(t, set, store.Pool{Name: "web", Min: 1, Max: 1, Desired: 1, MaxCreatesPerHour: 4})
	pt.cloud.noBoot = true
	pt.until("four tries, all gone", func(s []store.PoolServer) bool { return pt.cloud.Calls("create") == 4 && len(s) == 0 })
	cs, _ := pt.m.db.PoolCreations(context.Background(), "web", time.Time{})
	var types []string
	for _, c := range cs {
		types = append(types, c.Type+":"+c.Outcome)
	}
	if !slices.Equal(types, []string{"small:timeout", "big:timeout", "small:timeout", "big:timeout"}) {
		t.Errorf("creations %v: want each retry elsewhere", types)
	}
	for range 10 {
		pt.pm.pass(pt.ctx)
	}
	pt.pm.wg.Wait()
	if n := pt.cloud.Calls("create"); n != 4 {
		t.Errorf("%d create calls past the cap", n)
	}
	pt.sameServers()
}

// TestPoolManagerRestartMidCreate: the master stops while a create call
// is unanswered (the server exists at the provider): the next master
// finds it by name, and nothing is left that moat does not know.
func TestPoolManagerRestartMidCreate(t *testing.T) {
	pt := newPoolTest(t, fastPools, store.Pool{Name: "web", Min: 1, Max: 1, Desired: 1})
	pt.cloud.hang = true
	pt.until("a create under way", func(s []store.PoolServer) bool { return pt.cloud.Calls("create") >= 1 && len(s) == 1 })
	pt.restart(fastPools) // the create call's answer is lost
	pt.cloud.mu.Lock()
	pt.cloud.hang = false
	pt.cloud.mu.Unlock()
	pt.until("one ready, nothing else", func(s []store.PoolServer) bool {
		return len(s) == 1 && readyCount(s) == 1 && len(pt.cloud.ids()) == 1
	})
	pt.sameServers()
}

// TestPoolManagerOrphans: a server with this cluster's label unknown to
// moat is destroyed after the grace; one without the label, or with
// another cluster's, never.
func TestPoolManagerOrphans(t *testing.T) {
	pt := newPoolTest(t, fastPools, store.Pool{Name: "web", Min: 0, Max: 1, Desired: 0})
	cluster, err := pt.m.db.ClusterID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	orphan := pt.cloud.add("web-stray", map[string]string{provider.LabelCluster: cluster, provider.LabelPool: "web"}, time.Now())
	mine := pt.cloud.add("my-own-vps", nil, time.Now().Add(-24*time.Hour))
	theirs := pt.cloud.add("web-theirs", map[string]string{provider.LabelCluster: "another"}, time.Now().Add(-24*time.Hour))
	pt.pm.pass(pt.ctx)
	if !slices.Contains(pt.cloud.ids(), orphan) {
		t.Fatal("an orphan destroyed within its grace")
	}
	pt.until("the orphan gone", func([]store.PoolServer) bool { return !slices.Contains(pt.cloud.ids(), orphan) })
	for range 5 {
		pt.pm.pass(pt.ctx)
	}
	if got := pt.cloud.ids(); !slices.Equal(got, []string{mine, theirs}) {
		t.Errorf("the cloud holds %v, want the unlabelled %s and the other cluster's %s untouched", got, mine, theirs)
	}
}

// TestGrowAndRetire: growPool raises desired within max; retireNode
// drops it (not below min) and the server goes.
func TestGrowAndRetire(t *testing.T) {
	pt := newPoolTest(t, fastPools, store.Pool{Name: "web", Min: 1, Max: 3, Desired: 1})
	ctx := context.Background()
	if err := pt.m.growPool(ctx, "web", 5, "test"); err != nil {
		t.Fatal(err)
	}
	if p, _ := pt.m.db.GetPool(ctx, "web"); p.Desired != 3 {
		t.Errorf("desired %d after growing by 5, want max 3", p.Desired)
	}
	rows := pt.until("three ready", func(s []store.PoolServer) bool { return readyCount(s) == 3 })
	if err := pt.m.retireNode(ctx, rows[0].Name, "idle"); err != nil {
		t.Fatal(err)
	}
	if p, _ := pt.m.db.GetPool(ctx, "web"); p.Desired != 2 {
		t.Errorf("desired %d after retiring one of 3", p.Desired)
	}
	pt.until("two left", func(s []store.PoolServer) bool { return len(s) == 2 && readyCount(s) == 2 })
	if _, err := pt.m.db.GetNode(ctx, rows[0].Name); err == nil {
		t.Error("the retired node is still registered")
	}
	if err := pt.m.retireNode(ctx, "not-a-pool-node", "idle"); err == nil {
		t.Error("retired a node no pool has")
	}
	if err := pt.m.growPool(ctx, "static", 1, "test"); err == nil {
		t.Error("grew the static pool")
	}
	pt.sameServers()
}

// TestReuseNode: a retiring node whose drain waits (a replica left on
// it) is taken back: ready, uncordoned, desired restored, not destroyed;
// a node not retiring is refused.
func TestReuseNode(t *testing.T) {
	pt := newPoolTest(t, fastPools, store.Pool{Name: "web", Min: 1, Max: 3, Desired: 2})
	ctx := context.Background()
	rows := pt.until("two ready", func(s []store.PoolServer) bool { return readyCount(s) == 2 })
	name := rows[1].Name
	if err := pt.m.db.AddReplica(ctx, store.Replica{ID: "r1", App: "app", Revision: 1, Template: "t", Node: name, Desired: store.Run}); err != nil {
		t.Fatal(err)
	}
	if err := pt.m.reuseNode(ctx, name, "test"); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("reused a ready node: %v", err)
	}
	if err := pt.m.retireNode(ctx, name, "idle"); err != nil {
		t.Fatal(err)
	}
	pt.until("draining", func([]store.PoolServer) bool {
		n, err := pt.m.db.GetNode(ctx, name)
		return err == nil && n.Draining && pt.pm.isBusy(name)
	})
	if err := pt.m.reuseNode(ctx, name, "a replica is unplaceable"); err != nil {
		t.Fatal(err)
	}
	pt.until("back", func(s []store.PoolServer) bool {
		n, err := pt.m.db.GetNode(ctx, name)
		return err == nil && !n.Cordoned && !pt.pm.isBusy(name) && readyCount(s) == 2 && len(s) == 2
	})
	if p, _ := pt.m.db.GetPool(ctx, "web"); p.Desired != 2 {
		t.Errorf("desired %d after retiring and reusing one of 2", p.Desired)
	}
	pt.sameServers()
}

// TestPoolRemoving: a pool being removed has its servers retired and
// destroyed, then its row goes.
func TestPoolRemoving(t *testing.T) {
	pt := newPoolTest(t, fastPools, store.Pool{Name: "web", Min: 2, Max: 3, Desired: 2})
	ctx := context.Background()
	pt.until("two ready", func(s []store.PoolServer) bool { return readyCount(s) == 2 })
	if _, err := pt.m.db.UpdatePool(ctx, "web", func(p *store.Pool) error { p.Removing = true; return nil }); err != nil {
		t.Fatal(err)
	}
	pt.until("gone", func(s []store.PoolServer) bool {
		_, err := pt.m.db.GetPool(ctx, "web")
		return len(s) == 0 && errors.Is(err, errs.ErrNotFound)
	})
	if ids := pt.cloud.ids(); len(ids) != 0 {
		t.Errorf("the cloud still holds %v", ids)
	}
	if nodes, _ := pt.m.db.Nodes(ctx); len(nodes) != 0 {
		t.Errorf("nodes left: %+v", nodes)
	}
}

// TestPoolKeepsPinnedNodes: scaling a pool down never retires the node an
// app is pinned to by its volumes (its replica has nowhere to go: the
// drain would never end and the server would stay paid for, cordoned);
// the other goes, and the pool says which it keeps and why.
func TestPoolKeepsPinnedNodes(t *testing.T) {
	pt := newPoolTest(t, fastPools, store.Pool{Name: "web", Min: 0, Max: 4, Desired: 2})
	rows := pt.until("two ready", func(s []store.PoolServer) bool { return len(s) == 2 && readyCount(s) == 2 })
	// The newest, least loaded is the one a plain scale-down picks: pin
	// an app to it.
	slices.SortFunc(rows, func(a, b store.PoolServer) int { return b.Created.Compare(a.Created) })
	pinnedTo, other := rows[0].Name, rows[1].Name
	sp, _ := json.Marshal(spec.App{Name: "db", Replicas: 1, Volumes: []spec.Volume{{Node: pinnedTo, Source: "/srv/db", Target: "/data"}}})
	if _, err := pt.m.db.NewRevision(context.Background(), store.Revision{App: "db", Spec: sp, Image: "sha256:" + strings.Repeat("0", 64), Template: "t1", Cause: "deploy"}); err != nil {
		t.Fatal(err)
	}
	pt.setDesired(0)
	left := pt.until("the unpinned node retired", func(s []store.PoolServer) bool { return len(s) == 1 })
	if left[0].Name != pinnedTo || left[0].State != store.ServerReady {
		t.Errorf("left %+v, want %s ready (the pinned app's node); %s retired", left, pinnedTo, other)
	}
	// More passes change nothing: it is kept, not drained.
	for range 5 {
		pt.pm.pass(pt.ctx)
	}
	if s, err := pt.m.db.GetPoolServer(context.Background(), pinnedTo); err != nil || s.State != store.ServerReady {
		t.Errorf("the pinned node: %+v, %v", s, err)
	}
	if n, err := pt.m.db.GetNode(context.Background(), pinnedTo); err != nil || n.Cordoned {
		t.Errorf("the pinned node's node: %+v, %v", n, err)
	}
	views, err := pt.m.poolViews(context.Background())
	if err != nil || len(views) != 1 || !strings.Contains(views[0].LastError, pinnedTo) || !strings.Contains(views[0].LastError, "pinned") {
		t.Errorf("the pool does not say why it keeps %s: %+v, %v", pinnedTo, views, err)
	}
	pt.sameServers()
}

// TestCreateRechecksPool: a server's creation that moves on to the next
// type after a capacity error asks again whether its pool still wants
// servers: removed meanwhile (a pass found no server row in the gap
// between the capacity answer and the next intent), or being removed, it
// makes no more create calls — a server of a pool that no longer exists
// would be a node nothing retires, in an account no orphan pass lists.
func TestCreateRechecksPool(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(pt *poolTest) error
	}{
		{"removed", func(pt *poolTest) error { return pt.m.db.RemovePool(context.Background(), "web") }},
		{"being removed", func(pt *poolTest) error {
			_, err := pt.m.db.UpdatePool(context.Background(), "web", func(p *store.Pool) error {
				p.Removing, p.Min, p.Desired = true, 0, 0
				return nil
			})
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pt := newPoolTest(t, fastPools, store.Pool{Name: "web", Min: 1, Max: 2, Desired: 1})
			pt.cloud.capacity["small"] = true
			done := make(chan error, 1)
			pt.cloud.onCreate = func(req provider.CreateRequest) {
				if req.Type == "small" {
					done <- c.change(pt)
				}
			}
			pt.pm.pass(pt.ctx)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			pt.pm.wg.Wait()
			if n := pt.cloud.Calls("create"); n != 1 {
				t.Errorf("%d create calls, want 1 (none after the pool went)", n)
			}
			if ids := pt.cloud.ids(); len(ids) != 0 {
				t.Errorf("servers made for a pool %s: %v", c.name, ids)
			}
		})
	}
}

// TestEnrolOnlyItsOwnNode: a node already registered under a new
// server's name is taken for it (the master died between registering and
// recording) only if it is that pool's; any other (a static node of that
// name) is neither adopted as the pool's server, nor removed when the
// server is destroyed.
func TestEnrolOnlyItsOwnNode(t *testing.T) {
	pt := newPoolTest(t, fastPools, store.Pool{Name: "web", Min: 0, Max: 2, Desired: 0})
	pt.pm.bring = pt.pm.enrol
	ctx := context.Background()
	const name = "web-abc123"
	if err := pt.m.db.PutNode(ctx, store.Node{Name: name, Addr: "192.0.2.9:22", User: "root", HostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummyDummyDummyDummyDummyDummyDummyDummyDummy",
		Labels: map[string]string{"role": "db"}, Enrolled: time.Now()}); err != nil {
		t.Fatal(err)
	}
	id := pt.cloud.add(name, map[string]string{provider.LabelPool: "web"}, time.Now())
	p, err := pt.m.db.GetPool(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	s := store.PoolServer{Name: name, Pool: "web", Type: "small", State: store.ServerCreating, Created: time.Now()}
	if _, err := pt.m.db.RecordCreateIntent(ctx, s, s.Created); err != nil {
		t.Fatal(err)
	}
	s.State, s.ProviderID = store.ServerBooting, id
	if err := pt.m.db.PutPoolServer(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := pt.pm.enrol(ctx, p, &s, pt.cloud); err == nil {
		t.Errorf("enrol took the static node %s for the pool's server", name)
	}
	if row, err := pt.m.db.GetPoolServer(ctx, name); err != nil || row.State == store.ServerReady {
		t.Errorf("the server's row: %+v, %v", row, err)
	}
	pt.pm.bringUp(pt.ctx, p, s, pt.cloud) // fails, destroys the server
	if _, err := pt.m.db.GetNode(ctx, name); err != nil {
		t.Errorf("the static node went with the pool's server: %v", err)
	}
	if ids := pt.cloud.ids(); len(ids) != 0 {
		t.Errorf("the server was not destroyed: %v", ids)
	}
}
