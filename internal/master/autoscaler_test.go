package master

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/autoscale"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/sched"
	"github.com/moatcloud/moat/internal/spec"
)

const gib = 1 << 30

var local2 = provider.ServerType{Name: "local-2", CPUMilli: 2000, MemoryBytes: 2 * gib}

// localPool is a local pool p1 (min 1, max 4) with these servers.
func localPool(desired int, servers ...store.PoolServer) scalerPool {
	return scalerPool{Pool: store.Pool{Name: "p1", Provider: store.ProviderLocal, Min: 1, Max: 4, Desired: desired, Types: []string{"local-2"},
		Labels: map[string]string{"zone": "a"}, IdleAfter: time.Minute}, Types: []provider.ServerType{local2}, Servers: servers}
}

func server(name, state string) store.PoolServer {
	return store.PoolServer{Name: name, Pool: "p1", Type: "local-2", State: state, BilledSince: ago(time.Hour)}
}

// sizedNodes are enrolled nodes of 2 CPUs and 2 GiB.
func sizedNodes(names ...string) map[string]store.Node {
	out := nodes(names...)
	for n, x := range out {
		x.Info.CPUs, x.Info.MemoryBytes, x.Tenant = 2, 2*gib, store.DefaultTenant
		out[n] = x
	}
	return out
}

func TestScalerPools(t *testing.T) {
	w := &world{now: t0, nodes: sizedNodes("static", "p1-a", "p1-b", "p1-c", "p1-d"),
		views: map[string]view{"static": upView(), "p1-a": upView(), "p1-b": {}, "p1-d": upView(), "p1-e": upView()}}
	w.nodes["p1-e"] = store.Node{Name: "p1-e", Tenant: store.DefaultTenant, Enrolled: ago(time.Second)}
	w.nodes["p1-f"] = store.Node{Name: "p1-f", Tenant: store.DefaultTenant, Enrolled: ago(time.Hour)}
	w.views["p1-g"] = view{}
	w.nodes["p1-g"] = store.Node{Name: "p1-g", Tenant: store.DefaultTenant, Enrolled: ago(time.Hour), Info: store.NodeInfo{CPUs: 2, MemoryBytes: 2 * gib}}
	for _, name := range []string{"p1-b", "p1-c"} {
		n := w.nodes[name]
		n.Enrolled = ago(time.Second)
		w.nodes[name] = n
	}
	cordoned := w.nodes["p1-d"]
	cordoned.Cordoned = true
	w.nodes["p1-d"] = cordoned
	static := scalerPool{Pool: store.Pool{Name: store.StaticPool, Provider: store.ProviderStatic}}
	for _, tc := range []struct {
		name          string
		pool          scalerPool
		ready, coming int
		draining      []string
	}{
		{"a ready node in sync counts ready", localPool(1, server("p1-a", store.ServerReady)), 1, 0, nil},
		{"a node not in sync is coming", localPool(2, server("p1-a", store.ServerReady), server("p1-b", store.ServerReady)), 1, 1, nil},
		{"a node in sync that has not reported its size is coming", func() scalerPool {
			return localPool(2, server("p1-a", store.ServerReady), server("p1-e", store.ServerReady))
		}(), 1, 1, nil},
		{"a node silent about its size long after it joined is held, not coming", localPool(2, server("p1-a", store.ServerReady), server("p1-f", store.ServerReady)), 1, 0, nil},
		{"a node down long after it joined is held, not coming", localPool(2, server("p1-a", store.ServerReady), server("p1-g", store.ServerReady)), 1, 0, nil},
		{"a registered node never seen is coming", localPool(2, server("p1-a", store.ServerReady), server("p1-c", store.ServerReady)), 1, 1, nil},
		{"servers being created, booted, enrolled are coming", localPool(4, server("p1-a", store.ServerReady),
			server("x", store.ServerCreating), server("y", store.ServerBooting), server("z", store.ServerEnrolling)), 1, 3, nil},
		{"desired beyond the servers is coming (no double scale-up)", localPool(3, server("p1-a", store.ServerReady)), 1, 2, nil},
		{"desired beyond the servers does not come with the breaker open", func() scalerPool {
			p := localPool(3, server("p1-a", store.ServerReady))
			p.BreakerOpen = true
			return p
		}(), 1, 0, nil},
		{"a retiring node may be taken back", localPool(1, server("p1-a", store.ServerReady), server("p1-d", store.ServerRetiring)), 1, 0, []string{"p1-d"}},
		{"an operator's cordon is neither, nor owed", localPool(2, server("p1-a", store.ServerReady), server("p1-d", store.ServerReady)), 1, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pools, draining := scalerPools(w, []scalerPool{static, tc.pool})
			if len(pools) != 1 {
				t.Fatalf("pools %v: want the cloud pool only", pools)
			}
			p := pools[0]
			if p.Ready != tc.ready || p.Coming != tc.coming {
				t.Errorf("ready %d coming %d, want %d and %d", p.Ready, p.Coming, tc.ready, tc.coming)
			}
			if p.Tenant != store.DefaultTenant {
				t.Errorf("tenant %q: a pool of no tenant's is the default tenant's, as its nodes", p.Tenant)
			}
			if p.Labels[store.PoolLabel] != "p1" || p.Labels["zone"] != "a" {
				t.Errorf("labels %v: want the pool's and moat-pool=p1", p.Labels)
			}
			var names []string
			for _, d := range draining {
				names = append(names, d.Node.Name)
				if d.Node.Capacity.MilliCPU != 2000 {
					t.Errorf("draining %s: capacity %v", d.Node.Name, d.Node.Capacity)
				}
			}
			if !slices.Equal(names, tc.draining) {
				t.Errorf("draining %v, want %v", names, tc.draining)
			}
		})
	}
}

func TestScalerDownInput(t *testing.T) {
	db := webApp(spec.App{Replicas: 1, Volumes: []spec.Volume{{Node: "p1-b", Source: "/srv/db", Target: "/data"}},
		Resources: spec.Resources{MilliCPU: 100, MemoryBytes: 64 << 20}}, store.StatusDeployed)
	db.Name, db.App.Name = "db", "db"
	cron := webApp(spec.App{Replicas: 1, Singleton: true, Resources: spec.Resources{MilliCPU: 100, MemoryBytes: 64 << 20}}, store.StatusDeployed)
	cron.Name, cron.App.Name = "cron", "cron"
	web := webApp(spec.App{Replicas: 2, Resources: spec.Resources{MilliCPU: 500, MemoryBytes: 256 << 20}}, store.StatusDeployed)
	w := &world{now: t0, nodes: sizedNodes("static", "p1-a", "p1-b", "p1-c", "p1-d"),
		views: map[string]view{"static": upView(), "p1-a": upView(), "p1-b": upView(), "p1-c": upView(), "p1-d": upView()},
		apps:  []appState{web, db, cron},
		replicas: []store.Replica{rep("w1", "static", "t2"), rep("w2", "p1-a", "t2"),
			{ID: "c1", App: "cron", Node: "p1-c", Desired: store.Stop}},
	}
	pools := []scalerPool{localPool(4, server("p1-a", store.ServerReady), server("p1-b", store.ServerReady),
		server("p1-c", store.ServerReady), server("p1-d", store.ServerReady))}
	idle := map[string]time.Time{"p1-a": ago(time.Hour), "p1-d": ago(2 * time.Minute)}
	in := scalerDownInput(w, pools, idle, nil, func(string) []string { return nil })
	if in.Pending != "" {
		t.Errorf("pending %q with nothing waiting", in.Pending)
	}
	byName := map[string]autoscale.Node{}
	for _, n := range in.Nodes {
		byName[n.Name] = n
	}
	if len(byName) != 4 {
		t.Fatalf("nodes %v: want the pool's four", in.Nodes)
	}
	if a := byName["p1-a"]; len(a.Apps) != 1 || a.Apps[0].App != "web" || a.Apps[0].Count != 1 || a.Sched.Allocated.MilliCPU != 500 || !a.IdleSince.Equal(ago(time.Hour)) {
		t.Errorf("p1-a: %+v", a)
	}
	if b := byName["p1-b"]; !slices.Equal(b.Pinned, []string{"db"}) {
		t.Errorf("p1-b pinned %v, want db", b.Pinned)
	}
	if c := byName["p1-c"]; !slices.Equal(c.Singletons, []string{"cron"}) {
		t.Errorf("p1-c singletons %v, want cron (stopping, may hold the lease)", c.Singletons)
	}
	notes := autoscale.Down(in)
	want := map[string]string{
		"p1-a": "its replicas fit elsewhere",
		"p1-b": "holds pinned volume of app db",
		"p1-c": "holds singleton lease of app cron",
		"p1-d": "idle 2m (after 1m), pool p1 above min",
	}
	for _, n := range notes {
		if !strings.Contains(n.Reason, want[n.Node]) {
			t.Errorf("%s: %q, want %q", n.Node, n.Reason, want[n.Node])
		}
	}

	// Replicas waiting for new nodes: nothing is retired.
	if in := scalerDownInput(w, pools, idle, map[string]string{"web": "waiting for 1 new node in pool p1"}, func(string) []string { return nil }); in.Pending != "replicas of web wait for new nodes" {
		t.Errorf("pending %q", in.Pending)
	}
	// Replicas no pool helps hold nothing back.
	w.unplaced = []sched.Request{{App: "db", Count: 1, Pinned: "gone"}}
	if in := scalerDownInput(w, pools, idle, nil, func(string) []string { return nil }); in.Pending != "" {
		t.Errorf("pending %q for replicas no pool helps", in.Pending)
	}
	w.unplaced = nil
	// Nodes on their way: nothing is retired.
	pools[0].Servers = append(pools[0].Servers, server("p1-e", store.ServerBooting))
	if in := scalerDownInput(w, pools, idle, nil, func(string) []string { return nil }); in.Pending != "1 nodes on their way" {
		t.Errorf("pending %q", in.Pending)
	}
}

// TestAutoscalePass: a reconcile pass with replicas left unplaced asks the
// pool for nodes at once, remembers why for status, tells the deploy what
// it waits for, and asks nothing more on the next pass while they come.
func TestAutoscalePass(t *testing.T) {
	m := &Master{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	pool := localPool(1, server("p1-a", store.ServerReady))
	var grown []string
	m.scaler.ops = scalerOps{
		pools: func(context.Context) ([]scalerPool, error) { return []scalerPool{pool}, nil },
		grow: func(_ context.Context, p string, n int, why string) error {
			grown = append(grown, p)
			pool.Desired += n
			return nil
		},
		retire: func(context.Context, string, string) error { return errors.New("no") },
		reuse:  func(context.Context, string, string) error { return errors.New("no") },
	}
	web := webApp(spec.App{Replicas: 5, Resources: spec.Resources{MilliCPU: 1000, MemoryBytes: 256 << 20}}, store.StatusProgressing)
	w := &world{now: t0, nodes: sizedNodes("p1-a"), views: map[string]view{"p1-a": upView()}, apps: []appState{web},
		replicas: []store.Replica{rep("w1", "p1-a", "t2"), rep("w2", "p1-a", "t2")},
		unplaced: []sched.Request{{App: "web", Count: 3, Resources: sched.Resources{MilliCPU: 1000, MemoryBytes: 256 << 20}, Spread: true}}}
	m.autoscale(context.Background(), w)
	if !slices.Equal(grown, []string{"p1"}) || pool.Desired != 3 {
		t.Fatalf("grown %v, desired %d: want p1 grown by 2", grown, pool.Desired)
	}
	if got := m.waitingFor("web"); got != "waiting for 2 new nodes in pool p1" {
		t.Errorf("waiting %q", got)
	}
	st, _ := m.AutoscalerStatus(context.Background(), true)
	if st.ScaleUp == nil || len(st.ScaleUp.Unplaced) != 1 || st.ScaleUp.Unplaced[0].Replicas != 3 || len(st.ScaleUp.Pools) != 1 || st.ScaleUp.Pools[0].Add != 2 {
		t.Errorf("status %+v", st.ScaleUp)
	}
	if len(st.Actions) != 1 || st.Actions[0].Kind != masterapi.ActionGrow || st.Actions[0].Count != 2 {
		t.Errorf("actions %+v", st.Actions)
	}
	if st.ScaleDown == nil || st.ScaleDown.Pending == "" {
		t.Errorf("scale-down %+v: want a decision that retires nothing while replicas wait", st.ScaleDown)
	}
	// The next pass, the nodes still on their way: nothing more.
	w.now = t0.Add(time.Second)
	m.autoscale(context.Background(), w)
	if len(grown) != 1 {
		t.Errorf("grown %v: a second scale-up while the first is on its way", grown)
	}
	if got := m.waitingFor("web"); got != "waiting for 2 new nodes in pool p1" {
		t.Errorf("waiting %q on the second pass", got)
	}
	// Placed: nothing waits any more.
	w.unplaced = nil
	m.autoscale(context.Background(), w)
	if got := m.waitingFor("web"); got != "" {
		t.Errorf("waiting %q once placed", got)
	}
	// Found unplaceable, but a node came up since: nothing is bought.
	pool.Servers = append(pool.Servers, server("p1-b", store.ServerReady))
	w.nodes = sizedNodes("p1-a", "p1-b")
	w.views["p1-b"] = upView()
	w.unplaced = []sched.Request{{App: "web", Count: 2, Resources: sched.Resources{MilliCPU: 1000, MemoryBytes: 256 << 20}, Spread: true}}
	w.now = t0.Add(2 * time.Second)
	m.autoscale(context.Background(), w)
	if len(grown) != 1 {
		t.Errorf("grown %v: nodes bought for replicas a node that came up takes", grown)
	}
	w.unplaced = nil
	// A tenant's viewer, who may not list nodes, sees its apps only.
	st, _ = m.AutoscalerStatus(context.Background(), false)
	if st.ScaleDown != nil || len(st.Actions) != 0 || len(st.ScaleUp.Pools) != 0 {
		t.Errorf("a caller who may not list nodes sees %+v", st)
	}
}

// TestAutoscaleReuse: a pool node being retired is taken back for
// replicas that fit on it, before a new node is bought; an operator's
// drain is never undone.
func TestAutoscaleReuse(t *testing.T) {
	m := &Master{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	pool := localPool(1, server("p1-a", store.ServerReady), server("p1-b", store.ServerRetiring))
	var grown, reused []string
	m.scaler.ops = scalerOps{
		pools: func(context.Context) ([]scalerPool, error) { return []scalerPool{pool}, nil },
		grow: func(_ context.Context, p string, n int, why string) error {
			grown = append(grown, p)
			return nil
		},
		retire: func(context.Context, string, string) error { return nil },
		reuse: func(_ context.Context, node, why string) error {
			reused = append(reused, node)
			return nil
		},
	}
	web := webApp(spec.App{Replicas: 3, Resources: spec.Resources{MilliCPU: 1000, MemoryBytes: 256 << 20}}, store.StatusProgressing)
	w := &world{now: t0, nodes: sizedNodes("p1-a", "p1-b", "ops"), views: map[string]view{"p1-a": upView(), "p1-b": upView(), "ops": upView()}, apps: []appState{web},
		replicas: []store.Replica{rep("w1", "p1-a", "t2"), rep("w2", "p1-a", "t2")},
		unplaced: []sched.Request{{App: "web", Count: 1, Tenant: store.DefaultTenant, Resources: sched.Resources{MilliCPU: 1000, MemoryBytes: 256 << 20}}}}
	for _, name := range []string{"p1-b", "ops"} {
		n := w.nodes[name]
		n.Cordoned, n.Draining = true, true
		w.nodes[name] = n
	}
	m.autoscale(context.Background(), w)
	if !slices.Equal(reused, []string{"p1-b"}) || len(grown) != 0 {
		t.Errorf("reused %v, grown %v: want p1-b taken back and nothing bought", reused, grown)
	}
	if got := m.waitingFor("web"); got != "waiting for draining p1-b taken back" {
		t.Errorf("waiting %q", got)
	}
}

// TestWaitedUntil: the last wait for new nodes is remembered per app
// revision, forgotten for a revision superseded, and once judged.
func TestWaitedUntil(t *testing.T) {
	var s scaler
	s.waited("web@2", t0)
	s.waited("api@1", t0)
	s.forgetWaits("web", "web@2", false)
	if !s.waitedUntil["web@2"].Equal(t0) {
		t.Errorf("web@2 forgotten while still rolling out")
	}
	s.forgetWaits("web", "web@3", false)
	if _, ok := s.waitedUntil["web@2"]; ok {
		t.Errorf("web@2 kept once superseded by web@3")
	}
	s.forgetWaits("api", "api@1", true)
	if len(s.waitedUntil) != 0 {
		t.Errorf("waits %v kept once judged", s.waitedUntil)
	}
}

// TestLostCreate: a create whose answer was lost is not on its way.
func TestLostCreate(t *testing.T) {
	for _, tc := range []struct {
		s    store.PoolServer
		lost bool
	}{
		{store.PoolServer{Name: "a", State: store.ServerCreating}, true},
		{store.PoolServer{Name: "a", State: store.ServerCreating, ProviderID: "7"}, false},
		{store.PoolServer{Name: "a", State: store.ServerBooting, ProviderID: "7"}, false},
		{store.PoolServer{Name: "a", State: store.ServerReady}, false},
		{store.PoolServer{Name: "a", State: store.ServerRetiring}, false},
	} {
		if got := lostCreate(tc.s, nil); got != tc.lost {
			t.Errorf("%+v: lost %v, want %v", tc.s, got, tc.lost)
		}
	}
}
