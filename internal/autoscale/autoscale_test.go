package autoscale

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/sched"
)

const gib = 1 << 30

var (
	local1 = Type{Name: "local-1", MilliCPU: 1000, MemoryBytes: 1 * gib}
	local2 = Type{Name: "local-2", MilliCPU: 2000, MemoryBytes: 2 * gib}
	cx22   = Type{Name: "cx22", MilliCPU: 2000, MemoryBytes: 4 * gib, Hourly: 0.006, Currency: "EUR", BilledHourly: true}
	cx32   = Type{Name: "cx32", MilliCPU: 4000, MemoryBytes: 8 * gib, Hourly: 0.0113, Currency: "EUR", BilledHourly: true}
	s2     = Type{Name: "s-2vcpu-4gb", MilliCPU: 2000, MemoryBytes: 4 * gib, Monthly: 24, Currency: "USD"}
)

func req(app string, n int, milli int64, mem int64) sched.Request {
	return sched.Request{App: app, Count: n, Resources: sched.Resources{MilliCPU: milli, MemoryBytes: mem}, Spread: true}
}

func pool(name string, min, max, ready, coming int, types ...Type) Pool {
	return Pool{Name: name, Min: min, Max: max, Ready: ready, Coming: coming, Types: types}
}

func TestUp(t *testing.T) {
	labelled := pool("gpu", 0, 3, 0, 0, cx32)
	labelled.Labels = map[string]string{"gpu": "yes"}
	acme := pool("acme", 0, 3, 0, 0, local2)
	acme.Tenant = "acme"
	broken := pool("b", 0, 5, 0, 0, local2)
	broken.BreakerOpen, broken.BreakerReason = true, "4 creations in the last hour (max 4)"
	brokenComing := broken
	brokenComing.Coming = 2
	gpuApp := req("train", 2, 3000, 2*gib)
	gpuApp.Labels = map[string]string{"gpu": "yes"}
	acmeApp := req("acme.web", 2, 1000, gib)
	acmeApp.Tenant = "acme"
	pinned := req("db", 1, 500, gib)
	pinned.Pinned = "n1"
	roomy := sched.Node{Name: "n1", Capacity: sched.Resources{MilliCPU: 2000, MemoryBytes: 2 * gib}}
	refusing := roomy
	refusing.RefusesImage = true
	drainNode := sched.Node{Name: "p1-x", Capacity: sched.Resources{MilliCPU: 2000, MemoryBytes: 2 * gib}, Cordoned: true}
	refusingPool := pool("p1", 0, 4, 1, 0, local2)
	refusingPool.Refuses = map[string]bool{"web": true}
	refusingComing := refusingPool
	refusingComing.Coming = 2

	tests := []struct {
		name     string
		reqs     []sched.Request
		pools    []Pool
		draining []Draining
		existing map[string][]sched.Node
		grow     []Grow // Why not compared
		reuse    []string
		notes    map[string]string // pool → reason substring
		waiting  map[string]string // app → waiting substring
		unhelped map[string]string // app → substring
	}{
		// A pool node enforces its image's signing policy: an app whose
		// image the pool's nodes refuse gets no node there (each would
		// stay empty, be retired idle, and be bought again).
		{name: "the pool's nodes refuse the image: no node for it", reqs: []sched.Request{req("web", 1, 500, 256<<20)},
			pools: []Pool{refusingPool}, notes: map[string]string{"p1": "refuse app web's image"},
			unhelped: map[string]string{"web": "refuse app web's image"}},
		{name: "the pool's nodes refuse the image: a draining one is not taken back for it", reqs: []sched.Request{req("web", 1, 500, 256<<20)},
			pools: []Pool{refusingPool}, draining: []Draining{{Node: drainNode, Pool: "p1"}},
			unhelped: map[string]string{"web": "refuse app web's image"}},
		{name: "the pool's nodes refuse the image: nodes coming do not wait for it", reqs: []sched.Request{req("web", 1, 500, 256<<20)},
			pools:    []Pool{refusingComing},
			unhelped: map[string]string{"web": "refuse app web's image"}},
		{name: "another pool's nodes take it", reqs: []sched.Request{req("web", 1, 500, 256<<20)},
			pools: []Pool{refusingPool, pool("p2", 0, 2, 0, 0, local2)}, grow: []Grow{{Pool: "p2", N: 1}}},
		{name: "nothing unplaced", pools: []Pool{pool("p1", 1, 4, 1, 0, local2)},
			notes: map[string]string{"p1": "not needed"}},
		{name: "fewest nodes of the only pool", reqs: []sched.Request{req("web", 5, 500, 256<<20)}, pools: []Pool{pool("p1", 1, 4, 1, 0, local2)},
			grow: []Grow{{Pool: "p1", N: 2}}, notes: map[string]string{"p1": "5 replicas of web fit on no node; 2 × local-2"},
			waiting: map[string]string{"web": "waiting for 2 new nodes in pool p1"}},
		{name: "max respected: places what it can", reqs: []sched.Request{req("web", 10, 1000, 256<<20)}, pools: []Pool{pool("p1", 1, 4, 1, 0, local2)},
			grow: []Grow{{Pool: "p1", N: 3}}, waiting: map[string]string{"web": "3 new nodes in pool p1"}},
		{name: "max reached", reqs: []sched.Request{req("web", 1, 1000, 0)}, pools: []Pool{pool("p1", 1, 4, 4, 0, local2)},
			notes:    map[string]string{"p1": "max reached (4 of 4)"},
			unhelped: map[string]string{"web": "pool p1: max reached (4 of 4)"}},
		{name: "nodes being created count: no double scale-up", reqs: []sched.Request{req("web", 3, 1000, 0)}, pools: []Pool{pool("p1", 1, 4, 1, 2, local2)},
			notes: map[string]string{"p1": "not needed"}, waiting: map[string]string{"web": "waiting for 2 new nodes in pool p1"}},
		{name: "nodes being created cover part: one more", reqs: []sched.Request{req("web", 5, 1000, 0)}, pools: []Pool{pool("p1", 1, 4, 1, 2, local2)},
			grow: []Grow{{Pool: "p1", N: 1}}, waiting: map[string]string{"web": "waiting for 3 new nodes in pool p1"}},
		{name: "servers on their way in a pool whose breaker opened since still come", reqs: []sched.Request{req("web", 1, 1000, 0)},
			pools:   []Pool{brokenComing, pool("p2", 0, 2, 0, 0, local2)},
			notes:   map[string]string{"b": "not needed"},
			waiting: map[string]string{"web": "waiting for 1 new node in pool b"}},
		{name: "breaker open, nothing on its way", reqs: []sched.Request{req("web", 1, 1000, 0)},
			pools: []Pool{broken, pool("p2", 0, 2, 0, 0, local2)}, grow: []Grow{{Pool: "p2", N: 1}},
			notes: map[string]string{"b": "breaker open: 4 creations in the last hour (max 4)"}},
		{name: "cheapest pool wins", reqs: []sched.Request{req("web", 2, 1000, gib)},
			pools: []Pool{pool("big", 0, 4, 0, 0, cx32), pool("small", 0, 4, 0, 0, cx22)},
			grow:  []Grow{{Pool: "small", N: 1}}, notes: map[string]string{"big": "pool small is cheaper or preferred"}},
		{name: "cheaper in total, though more nodes", reqs: []sched.Request{req("web", 4, 1000, gib)},
			pools: []Pool{pool("big", 0, 4, 0, 0, cx32), pool("small", 0, 4, 0, 0, Type{Name: "cheap", MilliCPU: 2000, MemoryBytes: 4 * gib, Hourly: 0.005})},
			grow:  []Grow{{Pool: "small", N: 2}}},
		{name: "monthly price compared per hour", reqs: []sched.Request{req("web", 2, 1000, gib)},
			pools: []Pool{pool("do", 0, 4, 0, 0, s2), pool("hz", 0, 4, 0, 0, cx22)},
			grow:  []Grow{{Pool: "hz", N: 1}}},
		{name: "free pools: fewest nodes", reqs: []sched.Request{req("web", 2, 1000, gib)},
			pools: []Pool{pool("a", 0, 4, 0, 0, local1), pool("b", 0, 4, 0, 0, local2)},
			grow:  []Grow{{Pool: "b", N: 1}}},
		{name: "tie: the earlier pool", reqs: []sched.Request{req("web", 1, 1000, gib)},
			pools: []Pool{pool("a", 0, 4, 0, 0, local2), pool("b", 0, 4, 0, 0, local2)},
			grow:  []Grow{{Pool: "a", N: 1}}, notes: map[string]string{"b": "pool a is cheaper or preferred"}},
		{name: "type too small", reqs: []sched.Request{req("big", 1, 4000, gib)},
			pools:    []Pool{pool("p1", 0, 4, 0, 0, local2)},
			notes:    map[string]string{"p1": "type local-2 too small for app big (needs 4 cpu, has 2 cpu, 2 GiB)"},
			unhelped: map[string]string{"big": "type local-2 too small"}},
		{name: "the first type is what is simulated", reqs: []sched.Request{req("big", 1, 4000, gib)},
			pools: []Pool{pool("p1", 0, 4, 0, 0, local2, cx32)},
			notes: map[string]string{"p1": "type local-2 too small"}},
		{name: "labels", reqs: []sched.Request{gpuApp, req("web", 1, 2000, gib)},
			pools:   []Pool{labelled, pool("p1", 0, 4, 0, 0, local2)},
			grow:    []Grow{{Pool: "p1", N: 1}, {Pool: "gpu", N: 2}},
			waiting: map[string]string{"train": "2 new nodes in pool gpu", "web": "1 new node in pool p1"}},
		{name: "labels don't match", reqs: []sched.Request{gpuApp},
			pools: []Pool{pool("p1", 0, 4, 0, 0, cx32)},
			notes: map[string]string{"p1": "labels don't match: app train needs gpu=yes"}},
		{name: "tenant", reqs: []sched.Request{acmeApp},
			pools: []Pool{pool("p1", 0, 4, 0, 0, local2), acme},
			grow:  []Grow{{Pool: "acme", N: 1}},
			notes: map[string]string{"p1": "tenant: its nodes are the default tenant's, app acme.web is tenant acme's"}},
		{name: "default tenant's app goes to no tenant pool", reqs: []sched.Request{req("web", 1, 1000, 0)},
			pools: []Pool{acme}, grow: []Grow{{Pool: "acme", N: 1}}},
		{name: "breaker open", reqs: []sched.Request{req("web", 1, 1000, 0)}, pools: []Pool{broken},
			notes: map[string]string{"b": "breaker open"}, unhelped: map[string]string{"web": "pool b: breaker open"}},
		{name: "pinned app cannot be helped", reqs: []sched.Request{pinned}, pools: []Pool{pool("p1", 0, 4, 0, 0, local2)},
			unhelped: map[string]string{"db": "pinned to node n1 by its volumes"}},
		{name: "draining node taken back before buying", reqs: []sched.Request{req("web", 2, 1000, 0)},
			pools: []Pool{pool("p1", 0, 4, 1, 0, local2)}, draining: []Draining{{Node: drainNode, Pool: "p1"}},
			reuse: []string{"p1-x"}, notes: map[string]string{"p1": "not needed"},
			waiting: map[string]string{"web": "draining p1-x taken back"}},
		{name: "draining node not enough: one more", reqs: []sched.Request{req("web", 3, 1000, 0)},
			pools: []Pool{pool("p1", 0, 4, 1, 0, local2)}, draining: []Draining{{Node: drainNode, Pool: "p1"}},
			reuse: []string{"p1-x"}, grow: []Grow{{Pool: "p1", N: 1}}},
		{name: "room appeared on a node since: nothing asked", reqs: []sched.Request{req("web", 2, 1000, 0)},
			pools: []Pool{pool("p1", 0, 4, 1, 0, local2)}, existing: map[string][]sched.Node{"web": {roomy}},
			notes: map[string]string{"p1": "not needed"}},
		{name: "a node refusing the app's image is no room", reqs: []sched.Request{req("web", 2, 1000, 0)},
			pools: []Pool{pool("p1", 0, 4, 1, 0, local2)}, existing: map[string][]sched.Node{"web": {refusing}},
			grow: []Grow{{Pool: "p1", N: 1}}},
		{name: "room on a node is taken once", reqs: []sched.Request{req("web", 2, 1000, 0), req("api", 2, 1000, 0)},
			pools: []Pool{pool("p1", 0, 4, 1, 0, local2)}, existing: map[string][]sched.Node{"web": {roomy}, "api": {roomy}},
			grow: []Grow{{Pool: "p1", N: 1}}, waiting: map[string]string{"api": "1 new node in pool p1"}},
		{name: "no pools", reqs: []sched.Request{req("web", 1, 1000, 0)}, unhelped: map[string]string{"web": "no pool to grow"}},
		{name: "pool without types", reqs: []sched.Request{req("web", 1, 1000, 0)}, pools: []Pool{{Name: "x", Max: 3}},
			notes: map[string]string{"x": "no server type"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := Up(tc.reqs, tc.pools, tc.draining, tc.existing)
			var grow []Grow
			for _, g := range plan.Grow {
				if g.Why == "" {
					t.Errorf("grow %s without a reason", g.Pool)
				}
				g.Why = ""
				grow = append(grow, g)
			}
			if !slices.Equal(grow, tc.grow) {
				t.Errorf("grow = %v, want %v", grow, tc.grow)
			}
			if !slices.Equal(plan.Reuse, tc.reuse) {
				t.Errorf("reuse = %v, want %v", plan.Reuse, tc.reuse)
			}
			if len(plan.Pools) != len(tc.pools) {
				t.Errorf("%d pool notes for %d pools: %v", len(plan.Pools), len(tc.pools), plan.Pools)
			}
			for _, n := range plan.Pools {
				if n.Reason == "" {
					t.Errorf("pool %s: no reason", n.Pool)
				}
				if want, ok := tc.notes[n.Pool]; ok && !strings.Contains(n.Reason, want) {
					t.Errorf("pool %s: %q, want %q in it", n.Pool, n.Reason, want)
				}
			}
			for app, want := range tc.waiting {
				if !strings.Contains(plan.Waiting[app], want) {
					t.Errorf("waiting[%s] = %q, want %q in it", app, plan.Waiting[app], want)
				}
			}
			for app, want := range tc.unhelped {
				if !strings.Contains(plan.Unhelped[app], want) {
					t.Errorf("unhelped[%s] = %q, want %q in it", app, plan.Unhelped[app], want)
				}
				if _, ok := plan.Waiting[app]; ok {
					t.Errorf("%s both waiting and unhelped", app)
				}
			}
			for _, r := range tc.reqs { // every app is accounted for (or placed now)
				if tc.existing != nil {
					break
				}
				_, w := plan.Waiting[r.App]
				_, u := plan.Unhelped[r.App]
				if !w && !u {
					t.Errorf("app %s neither waiting nor unhelped", r.App)
				}
			}
		})
	}
}

// TestUpSimulatesTheScheduler: the nodes bought place every replica when
// the real scheduler places them on nodes of that size.
func TestUpSimulatesTheScheduler(t *testing.T) {
	for _, tc := range []struct {
		reqs []sched.Request
		typ  Type
	}{
		{[]sched.Request{req("a", 7, 700, 300<<20), req("b", 3, 1500, gib)}, local2},
		{[]sched.Request{req("a", 9, 300, 900<<20)}, cx22},
		{[]sched.Request{req("a", 1, 2000, 2*gib), req("b", 5, 100, 100<<20)}, local2},
	} {
		plan := Up(tc.reqs, []Pool{pool("p", 0, 50, 0, 0, tc.typ)}, nil, nil)
		if len(plan.Grow) != 1 || plan.Left != 0 {
			t.Fatalf("%v: grow %v", tc.reqs, plan.Grow)
		}
		n := plan.Grow[0].N
		nodes := make([]sched.Node, n)
		for i := range nodes {
			nodes[i] = sched.Node{Name: string(rune('a' + i)), Capacity: sched.Resources{MilliCPU: tc.typ.MilliCPU, MemoryBytes: tc.typ.MemoryBytes}}
		}
		for _, r := range tc.reqs {
			res := sched.Place(nodes, r)
			if res.Unplaced > 0 {
				t.Fatalf("%d nodes of %s: %d of %s unplaced: %s", n, tc.typ.Name, res.Unplaced, r.App, res.Reason)
			}
			for _, name := range res.Nodes {
				i := int(name[0] - 'a')
				nodes[i].Allocated.MilliCPU += r.Resources.MilliCPU
				nodes[i].Allocated.MemoryBytes += r.Resources.MemoryBytes
			}
		}
		// One node fewer would not do (the fewest).
		if n > 1 {
			less := Up(tc.reqs, []Pool{pool("p", 0, n-1, 0, 0, tc.typ)}, nil, nil)
			if less.Left == 0 {
				t.Errorf("%d nodes bought where %d place everything", n, n-1)
			}
		}
	}
}

func TestDown(t *testing.T) {
	now := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	cap2 := sched.Resources{MilliCPU: 2000, MemoryBytes: 2 * gib}
	sn := func(name string, alloc int64) sched.Node {
		return sched.Node{Name: name, Capacity: cap2, Allocated: sched.Resources{MilliCPU: alloc, MemoryBytes: alloc << 20}}
	}
	node := func(name string, idleFor time.Duration) Node {
		n := Node{Name: name, Pool: "p1", Sched: sn(name, 0), Ready: true}
		if idleFor > 0 {
			n.IdleSince = now.Add(-idleFor)
		}
		return n
	}
	p1 := pool("p1", 1, 4, 3, 0, local2)
	hourly := p1
	hourly.KeepBilledHour = true
	short := p1
	short.IdleAfter = time.Minute
	with := func(n Node, f func(*Node)) Node { f(&n); return n }

	tests := []struct {
		name    string
		pools   []Pool
		nodes   []Node
		cluster []sched.Node // besides the nodes'
		pending string
		refuses map[string]map[string]bool
		retire  []string
		reasons map[string]string
		fresh   []string // nodes whose idle clock starts now
		reset   []string // nodes whose idle clock is zero
	}{
		{name: "idle long enough", pools: []Pool{p1}, nodes: []Node{node("a", 11*time.Minute), node("b", 0), node("c", 4*time.Minute)},
			retire: []string{"a"}, reasons: map[string]string{"a": "idle 11m (after 10m), pool p1 above min (3 > 1)", "b": "idle 0s of 10m", "c": "idle 4m of 10m"},
			fresh: []string{"b"}},
		{name: "never below min", pools: []Pool{p1}, nodes: []Node{node("a", time.Hour), node("b", time.Hour), node("c", time.Hour)},
			retire: []string{"a", "b"}, reasons: map[string]string{"c": "idle, kept: pool p1 at min (1)"}},
		{name: "configured idle period", pools: []Pool{short}, nodes: []Node{node("a", 2*time.Minute), node("b", 30*time.Second)},
			retire: []string{"a"}, reasons: map[string]string{"b": "idle 30s of 1m"}},
		{name: "busy", pools: []Pool{p1}, nodes: []Node{with(node("a", time.Hour), func(n *Node) { n.Sched = sn("a", 1500) })},
			reasons: map[string]string{"a": "busy: 75% cpu, 73% memory requested"}, reset: []string{"a"}},
		{name: "pinned volume", pools: []Pool{p1}, nodes: []Node{with(node("a", time.Hour), func(n *Node) { n.Pinned = []string{"db"} })},
			reasons: map[string]string{"a": "holds pinned volume of app db"}, reset: []string{"a"}},
		{name: "singleton", pools: []Pool{p1}, nodes: []Node{with(node("a", time.Hour), func(n *Node) { n.Singletons = []string{"cron"} })},
			reasons: map[string]string{"a": "holds singleton lease of app cron"}},
		{name: "billed hour: kept until its end", pools: []Pool{hourly}, nodes: []Node{
			with(node("a", time.Hour), func(n *Node) { n.BilledHourly, n.BilledSince = true, now.Add(-83*time.Minute) }),
			with(node("b", time.Hour), func(n *Node) { n.BilledHourly, n.BilledSince = true, now.Add(-57*time.Minute) }),
			with(node("c", time.Hour), func(n *Node) { n.BilledSince = now.Add(-83 * time.Minute) }),
		}, retire: []string{"b", "c"}, reasons: map[string]string{"a": "idle, kept: billed hour ends in 37m"}},
		{name: "billed hour not kept when the pool says so", pools: []Pool{p1}, nodes: []Node{
			with(node("a", time.Hour), func(n *Node) { n.BilledHourly, n.BilledSince = true, now.Add(-83*time.Minute) })},
			retire: []string{"a"}},
		{name: "scale-up pending", pools: []Pool{p1}, nodes: []Node{node("a", time.Hour)}, pending: "replicas of web wait for room",
			reasons: map[string]string{"a": "idle, kept: replicas of web wait for room"}},
		{name: "underused node's replicas move elsewhere", pools: []Pool{p1}, nodes: []Node{
			with(node("a", time.Hour), func(n *Node) {
				n.Sched = sn("a", 500)
				n.Apps = []sched.Request{req("web", 1, 500, 500<<20)}
			})}, cluster: []sched.Node{sn("static", 0)},
			retire: []string{"a"}, reasons: map[string]string{"a": "its replicas fit elsewhere"}},
		{name: "underused node whose replicas fit nowhere else", pools: []Pool{p1}, nodes: []Node{
			with(node("a", time.Hour), func(n *Node) {
				n.Sched = sn("a", 500)
				n.Apps = []sched.Request{req("web", 1, 500, 500<<20)}
			})}, cluster: []sched.Node{sn("static", 1800)},
			reasons: map[string]string{"a": "its replicas of app web fit on no other node (1 node lacks CPU)"}, reset: []string{"a"}},
		{name: "other nodes refusing the app's image are no room", pools: []Pool{p1}, nodes: []Node{
			with(node("a", time.Hour), func(n *Node) {
				n.Sched = sn("a", 500)
				n.Apps = []sched.Request{req("web", 1, 500, 500<<20)}
			})}, cluster: []sched.Node{sn("static", 0)}, refuses: map[string]map[string]bool{"web": {"static": true}},
			reasons: map[string]string{"a": "fit on no other node (1 node does not accept the image's signature)"}},
		{name: "one node with replicas at a time", pools: []Pool{pool("p1", 0, 4, 3, 0, local2)}, nodes: []Node{
			with(node("a", time.Hour), func(n *Node) { n.Sched = sn("a", 300); n.Apps = []sched.Request{req("web", 1, 300, 300<<20)} }),
			with(node("b", time.Hour), func(n *Node) { n.Sched = sn("b", 400); n.Apps = []sched.Request{req("api", 1, 400, 400<<20)} }),
		}, cluster: []sched.Node{sn("static", 0)},
			retire: []string{"a"}, reasons: map[string]string{"b": "another node is being emptied"}},
		{name: "two drains never count on the same room", pools: []Pool{pool("p1", 0, 4, 3, 0, local2)}, nodes: []Node{
			node("e", time.Hour),
			with(node("a", time.Hour), func(n *Node) { n.Sched = sn("a", 300); n.Apps = []sched.Request{req("web", 1, 300, 300<<20)} }),
		}, cluster: []sched.Node{},
			retire: []string{"e"}, reasons: map[string]string{"a": "fit on no other node"}},
		{name: "not up, retiring, cordoned", pools: []Pool{p1}, nodes: []Node{
			with(node("a", time.Hour), func(n *Node) { n.Ready = false }),
			with(node("b", time.Hour), func(n *Node) { n.Retiring = true }),
			with(node("c", time.Hour), func(n *Node) { n.Cordoned = true }),
		}, reasons: map[string]string{"a": "not up", "b": "being retired", "c": "cordoned by an operator"}, reset: []string{"a", "b", "c"}},
		{name: "down for the idle period: retired, even at min; not while it holds a volume", pools: []Pool{p1}, nodes: []Node{
			with(node("a", 0), func(n *Node) { n.Ready, n.DownSince = false, now.Add(-11*time.Minute) }),
			with(node("b", 0), func(n *Node) { n.Ready, n.DownSince = false, now.Add(-3*time.Minute) }),
			with(node("c", 0), func(n *Node) { n.Ready, n.DownSince, n.Pinned = false, now.Add(-time.Hour), []string{"db"} }),
		}, retire: []string{"a"}, reasons: map[string]string{"a": "down 11m (after 10m)", "b": "down 3m of 10m", "c": "holds pinned volume of app db"}},
		{name: "a clock from the future starts now", pools: []Pool{p1}, nodes: []Node{node("a", -time.Hour)}, fresh: []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cluster := slices.Clone(tc.cluster)
			for _, n := range tc.nodes {
				cluster = append(cluster, n.Sched)
			}
			notes := Down(DownInput{Now: now, Pools: tc.pools, Nodes: tc.nodes, Cluster: cluster, Pending: tc.pending, Refuses: tc.refuses})
			if len(notes) != len(tc.nodes) {
				t.Fatalf("%d notes for %d nodes", len(notes), len(tc.nodes))
			}
			var retire []string
			for _, n := range notes {
				if n.Reason == "" {
					t.Errorf("%s: no reason", n.Node)
				}
				if n.Retire {
					retire = append(retire, n.Node)
				}
				if want, ok := tc.reasons[n.Node]; ok && !strings.Contains(n.Reason, want) {
					t.Errorf("%s: %q, want %q in it", n.Node, n.Reason, want)
				}
				if slices.Contains(tc.fresh, n.Node) && !n.IdleSince.Equal(now) {
					t.Errorf("%s: idle since %v, want now", n.Node, n.IdleSince)
				}
				if slices.Contains(tc.reset, n.Node) && !n.IdleSince.IsZero() {
					t.Errorf("%s: idle since %v, want zero", n.Node, n.IdleSince)
				}
			}
			if !slices.Equal(retire, tc.retire) {
				t.Errorf("retire %v, want %v", retire, tc.retire)
			}
		})
	}
}

func TestShort(t *testing.T) {
	for d, want := range map[time.Duration]string{45 * time.Second: "45s", 4*time.Minute + 59*time.Second: "4m", time.Hour: "1h", 65 * time.Minute: "1h5m"} {
		if got := short(d); got != want {
			t.Errorf("short(%s) = %q, want %q", d, got, want)
		}
	}
}
