// Package autoscale decides when the cluster grows and shrinks: how many
// nodes each pool should add so that replicas no node can take find room
// (Up), and which idle pool nodes to retire (Down). It is pure: the master
// gives it a snapshot (the unplaceable requests, the pools, the nodes) and
// applies the decisions, which say why for every pool and node, taken or
// not, so that moat autoscaler status can explain them.
//
// Scale-up simulates with the real scheduler (sched.Place) on hypothetical
// nodes of each pool's first server type, reporting themselves as a pool
// node would: the pool's labels and tenant, the type's CPU and memory.
// Nodes already being created count first, so a pass that runs while an
// earlier scale-up is on its way asks for nothing more; then a draining
// pool node is taken back before a new one is bought; then, for what is
// left, the cheapest pool that fits every replica wins (fewer nodes, then
// the order the pools are given in, break ties), cheapest meaning per
// replica placed; what that pool cannot place (its max, its labels) is
// tried on the others.
package autoscale

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/sched"
)

// Type is a server type a pool creates, as the provider sells it.
type Type struct {
	Name        string
	MilliCPU    int64
	MemoryBytes int64
	Hourly      float64 // price per hour (0: free, like local)
	Monthly     float64
	Currency    string
	// BilledHourly: each started hour is billed whole.
	BilledHourly bool
}

// hourly is the type's price per hour: its hourly price, else its
// monthly one spread over a month's hours.
func (t Type) hourly() float64 {
	if t.Hourly > 0 {
		return t.Hourly
	}
	return t.Monthly / 730
}

// Pool is what the autoscaler knows of one pool.
type Pool struct {
	Name     string
	Min, Max int
	// Ready is how many of its nodes are registered, up and in sync and
	// not being retired; Coming how many are on their way (servers being
	// created or enrolled, nodes not yet in sync; not servers the pool
	// has yet to create while its breaker is open). Both count towards
	// Max.
	Ready, Coming int
	Types         []Type // preference order; the first is what a new node is
	Labels        map[string]string
	Tenant        string
	Shared        bool
	BreakerOpen   bool // the loop breaker stops it creating servers
	BreakerReason string
	// IdleAfter is how long a node must stay idle before it is retired
	// (0: DefaultIdleAfter).
	IdleAfter time.Duration
	// KeepBilledHour: a node of an hourly-billed type is retired only in
	// the last BillWindow of its billed hour.
	KeepBilledHour bool
	// Refuses are the apps whose image the pool's nodes refuse (signed by
	// no key its image allows): no node of the pool — new, coming or
	// taken back — is counted on for them (it would stay empty, be
	// retired idle, and be bought again).
	Refuses map[string]bool
}

// Defaults.
const (
	DefaultIdleAfter = 10 * time.Minute
	// BillWindow is how close to the end of its billed hour an idle node
	// of an hourly-billed type must be to be retired.
	BillWindow = 5 * time.Minute
	// DefaultUtilisation is the share of a node's CPU and memory its
	// replicas may request and still count as idle (their replicas must
	// fit elsewhere).
	DefaultUtilisation = 0.5
)

func (p Pool) idleAfter() time.Duration { return cmp.Or(p.IdleAfter, DefaultIdleAfter) }

// Grow asks a pool for more nodes.
type Grow struct {
	Pool string
	N    int
	Why  string
}

// PoolNote says what became of one pool in a decision: chosen (and how
// many nodes), or why not.
type PoolNote struct {
	Pool   string
	Add    int
	Reason string
}

// UpPlan is a scale-up decision.
type UpPlan struct {
	Grow  []Grow   // nodes to create, per pool
	Reuse []string // draining pool nodes to take back (uncordon)
	Pools []PoolNote
	// Waiting says, per app, what its replicas wait for ("waiting for 2
	// new nodes in pool p1"); an app missing here is not helped by any
	// pool, and Unhelped says why.
	Waiting  map[string]string
	Unhelped map[string]string
	// Left is how many replicas stay unplaceable even so.
	Left int
}

// Draining is a pool node being retired that could be taken back.
type Draining struct {
	Node sched.Node // as the scheduler sees it, uncordoned
	Pool string
}

// hyp is a hypothetical node: being created, reusable, or to buy.
type hyp struct {
	node    sched.Node
	pool    string
	refuses map[string]bool // apps whose image its pool's nodes refuse
	kind    int             // kindComing, kindReuse, kindNew
	apps    map[string]bool
	taken   bool
}

const (
	kindComing = iota
	kindReuse
	kindNew
)

// poolNode is a node of pool p's first type, as it would report itself,
// named name.
func poolNode(p Pool, name string) sched.Node {
	t := p.Types[0]
	return sched.Node{Name: name, Labels: p.Labels, Tenant: p.Tenant, Shared: p.Shared,
		Capacity: sched.Resources{MilliCPU: t.MilliCPU, MemoryBytes: t.MemoryBytes}}
}

// Up decides a scale-up for the requests no node could take (each with
// Count the replicas left unplaced). Pinned requests cannot be helped: a
// new node holds none of the app's volumes. Existing is the cluster as
// the scheduler sees it now, per app (which nodes accept its image):
// what fits there already (a node came up since the replicas were found
// unplaceable) asks for nothing.
func Up(reqs []sched.Request, pools []Pool, draining []Draining, existing map[string][]sched.Node) UpPlan {
	plan := UpPlan{Waiting: map[string]string{}, Unhelped: map[string]string{}}
	var left []sched.Request
	for _, r := range reqs {
		if r.Count <= 0 {
			continue
		}
		if r.Pinned != "" {
			plan.Unhelped[r.App] = "pinned to node " + r.Pinned + " by its volumes"
			continue
		}
		r.Existing = nil
		left = append(left, r)
	}

	// 0. Room on the nodes there are now.
	left = onExisting(left, existing)
	// 1. Nodes on their way (servers that exist: a breaker that opened
	// since stops creations, not them).
	var coming []*hyp
	for _, p := range pools {
		if len(p.Types) == 0 {
			continue
		}
		for i := range p.Coming {
			coming = append(coming, &hyp{node: poolNode(p, fmt.Sprintf("%s/coming-%d", p.Name, i+1)), pool: p.Name, refuses: p.Refuses, kind: kindComing})
		}
	}
	left = simulate(left, coming)
	// 2. Draining pool nodes, taken back.
	var reuse []*hyp
	refuses := map[string]map[string]bool{}
	for _, p := range pools {
		refuses[p.Name] = p.Refuses
	}
	for _, d := range draining {
		n := d.Node
		n.Cordoned, n.Down = false, false
		reuse = append(reuse, &hyp{node: n, pool: d.Pool, refuses: refuses[d.Pool], kind: kindReuse})
	}
	left = simulate(left, reuse)
	for _, h := range reuse {
		if h.taken {
			plan.Reuse = append(plan.Reuse, h.node.Name)
		}
	}
	slices.Sort(plan.Reuse)
	all := append(slices.Clone(coming), reuse...)

	// 3. New nodes, pool by pool, best first, until nothing is left or
	// no pool helps.
	notes := map[string]string{}
	chosen := map[string]bool{}
	for len(left) > 0 {
		best, bestN, bestPlaced, bestLeft, bestHyps := -1, 0, 0, []sched.Request(nil), []*hyp(nil)
		for i, p := range pools {
			if chosen[p.Name] {
				continue
			}
			if why := cannotGrow(p); why != "" {
				notes[p.Name] = why
				continue
			}
			if why := mismatch(p, left); why != "" {
				notes[p.Name] = why
				continue
			}
			n, placed, rest, hs := fewest(p, left)
			if placed == 0 {
				notes[p.Name] = "the replicas do not fit on new nodes of type " + p.Types[0].Name
				continue
			}
			if best < 0 || better(p, n, placed, pools[best], bestN, bestPlaced) {
				best, bestN, bestPlaced, bestLeft, bestHyps = i, n, placed, rest, hs
			}
		}
		if best < 0 {
			break
		}
		p := pools[best]
		chosen[p.Name] = true
		left = bestLeft
		all = append(all, bestHyps...)
		why := fmt.Sprintf("%d replicas of %s fit on no node", bestPlaced, appNames(bestHyps))
		plan.Grow = append(plan.Grow, Grow{Pool: p.Name, N: bestN, Why: why})
		plan.Pools = append(plan.Pools, PoolNote{Pool: p.Name, Add: bestN, Reason: fmt.Sprintf("%s; %d × %s%s", why, bestN, p.Types[0].Name, price(p.Types[0]))})
		for _, q := range pools { // a pool passed over for this one
			if q.Name != p.Name && !chosen[q.Name] && notes[q.Name] == "" {
				notes[q.Name] = "pool " + p.Name + " is cheaper or preferred"
			}
		}
	}
	for _, p := range pools {
		if chosen[p.Name] {
			continue
		}
		r := notes[p.Name]
		if r == "" {
			r = "not needed"
		}
		plan.Pools = append(plan.Pools, PoolNote{Pool: p.Name, Reason: r})
	}
	slices.SortFunc(plan.Pools, func(a, b PoolNote) int { return cmp.Compare(a.Pool, b.Pool) })

	// What each app waits for, and why the rest wait for nothing.
	for _, app := range waitingApps(all) {
		plan.Waiting[app] = waitingFor(app, all)
	}
	for _, r := range left {
		plan.Left += r.Count
		if _, ok := plan.Waiting[r.App]; ok {
			continue
		}
		plan.Unhelped[r.App] = unhelped(r, pools)
	}
	return plan
}

// better says whether pool p with n new nodes placing placed replicas
// beats pool q with m placing qPlaced: cheaper per replica placed, then
// more placed, then fewer nodes (the earlier pool wins a tie, being
// looked at first). Per replica, so that an app any pool takes does not
// ride along on an expensive pool another app needs.
func better(p Pool, n, placed int, q Pool, m, qPlaced int) bool {
	pc := float64(n) * p.Types[0].hourly() / float64(placed)
	qc := float64(m) * q.Types[0].hourly() / float64(qPlaced)
	switch {
	case pc != qc:
		return pc < qc
	case placed != qPlaced:
		return placed > qPlaced
	}
	return n < m
}

// cannotGrow says why a pool cannot add a node at all, or "".
func cannotGrow(p Pool) string {
	switch {
	case len(p.Types) == 0:
		return "no server type"
	case p.BreakerOpen:
		return "breaker open: " + cmp.Or(p.BreakerReason, "too many creations this hour")
	case p.Ready+p.Coming >= p.Max:
		if p.Coming > 0 {
			return fmt.Sprintf("max reached (%d of %d, %d being created)", p.Ready+p.Coming, p.Max, p.Coming)
		}
		return fmt.Sprintf("max reached (%d of %d)", p.Ready, p.Max)
	}
	return ""
}

// mismatch says why none of the requests could ever go to a node of the
// pool (tenant, labels, size), naming the first, or "" when one could.
func mismatch(p Pool, reqs []sched.Request) string {
	var why string
	for _, r := range reqs {
		w := misfit(p, r)
		if w == "" {
			return ""
		}
		if why == "" {
			why = w
		}
	}
	return why
}

// misfit says why no node of pool p takes a replica of r, or "".
func misfit(p Pool, r sched.Request) string {
	if p.Refuses[r.App] {
		return fmt.Sprintf("its nodes refuse app %s's image (signed by no key the pool's image allows)", r.App)
	}
	if r.Tenant != "" && !p.Shared && p.Tenant != r.Tenant {
		owner := "the default tenant"
		if p.Tenant != "" {
			owner = "tenant " + p.Tenant
		}
		return fmt.Sprintf("tenant: its nodes are %s's, app %s is tenant %s's", owner, r.App, r.Tenant)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		if v, ok := p.Labels[k]; !ok || v != r.Labels[k] {
			return fmt.Sprintf("labels don't match: app %s needs %s=%s", r.App, k, r.Labels[k])
		}
	}
	t := p.Types[0]
	var needs []string
	if r.Resources.MilliCPU > t.MilliCPU {
		needs = append(needs, cpus(r.Resources.MilliCPU)+" cpu")
	}
	if r.Resources.MemoryBytes > t.MemoryBytes {
		needs = append(needs, mib(r.Resources.MemoryBytes)+" memory")
	}
	if len(needs) > 0 {
		return fmt.Sprintf("type %s too small for app %s (needs %s, has %s cpu, %s)", t.Name, r.App, strings.Join(needs, " and "), cpus(t.MilliCPU), mib(t.MemoryBytes))
	}
	return ""
}

// fewest finds the fewest new nodes of pool p (within its max) that
// place as many of the requests as the pool can, and returns how many,
// how many replicas they place, what is left, and the nodes.
func fewest(p Pool, reqs []sched.Request) (int, int, []sched.Request, []*hyp) {
	room := p.Max - p.Ready - p.Coming
	total := 0
	for _, r := range reqs {
		total += r.Count
	}
	try := func(n int) (int, []sched.Request, []*hyp) {
		hs := make([]*hyp, n)
		for i := range hs {
			hs[i] = &hyp{node: poolNode(p, fmt.Sprintf("%s/new-%d", p.Name, i+1)), pool: p.Name, refuses: p.Refuses, kind: kindNew}
		}
		rest := simulate(reqs, hs)
		placed := total
		for _, r := range rest {
			placed -= r.Count
		}
		return placed, rest, hs
	}
	// The most the pool can place is with every node it may add; then
	// the fewest nodes that place as many, by bisection (placing more
	// nodes never places fewer replicas).
	most, rest, hs := try(room)
	if most == 0 {
		return 0, 0, reqs, nil
	}
	lo, hi := 1, room
	if most == total {
		// Every replica placed: no fewer nodes than their sum over a
		// node's size.
		var cpu, mem int64
		for _, r := range reqs {
			cpu += int64(r.Count) * max(r.Resources.MilliCPU, 0)
			mem += int64(r.Count) * max(r.Resources.MemoryBytes, 0)
		}
		t := p.Types[0]
		lo = min(max(1, ceilDiv(cpu, t.MilliCPU), ceilDiv(mem, t.MemoryBytes)), room)
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if placed, _, _ := try(mid); placed >= most {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo < room {
		most, rest, hs = try(lo)
	}
	var used []*hyp
	for _, h := range hs {
		if h.taken {
			used = append(used, h)
		}
	}
	return len(used), most, rest, used
}

// ceilDiv is a/b rounded up; 0 when b is not positive.
func ceilDiv(a, b int64) int {
	if b <= 0 || a <= 0 {
		return 0
	}
	return int((a + b - 1) / b)
}

// onExisting places the requests on the nodes there are, each app on its
// own view of them, the allocation shared; it returns what does not fit.
func onExisting(reqs []sched.Request, existing map[string][]sched.Node) []sched.Request {
	if len(existing) == 0 {
		return reqs
	}
	added := map[string]sched.Resources{}
	var left []sched.Request
	for _, r := range reqs {
		nodes := slices.Clone(existing[r.App])
		for i, n := range nodes {
			a := added[n.Name]
			nodes[i].Allocated.MilliCPU += a.MilliCPU
			nodes[i].Allocated.MemoryBytes += a.MemoryBytes
		}
		res := sched.Place(nodes, r)
		for _, name := range res.Nodes {
			a := added[name]
			a.MilliCPU += max(r.Resources.MilliCPU, 0)
			a.MemoryBytes += max(r.Resources.MemoryBytes, 0)
			added[name] = a
		}
		if res.Unplaced > 0 {
			r.Count = res.Unplaced
			left = append(left, r)
		}
	}
	return left
}

// simulate places the requests on the hypothetical nodes with the real
// scheduler, one request after another, marking the nodes taken and their
// allocation; it returns what did not fit.
func simulate(reqs []sched.Request, hs []*hyp) []sched.Request {
	if len(hs) == 0 {
		return reqs
	}
	byName := map[string]*hyp{}
	nodes := make([]sched.Node, len(hs))
	for i, h := range hs {
		byName[h.node.Name] = h
		nodes[i] = h.node
	}
	var left []sched.Request
	for _, r := range reqs {
		for i, h := range hs {
			nodes[i].RefusesImage = h.node.RefusesImage || h.refuses[r.App]
		}
		res := sched.Place(nodes, r)
		for _, name := range res.Nodes {
			h := byName[name]
			h.taken = true
			if h.apps == nil {
				h.apps = map[string]bool{}
			}
			h.apps[r.App] = true
			h.node.Allocated.MilliCPU += max(r.Resources.MilliCPU, 0)
			h.node.Allocated.MemoryBytes += max(r.Resources.MemoryBytes, 0)
		}
		for i, h := range hs {
			nodes[i] = h.node
		}
		if res.Unplaced > 0 {
			r.Count = res.Unplaced
			left = append(left, r)
		}
	}
	return left
}

func appNames(hs []*hyp) string {
	apps := map[string]bool{}
	for _, h := range hs {
		for a := range h.apps {
			apps[a] = true
		}
	}
	return strings.Join(slices.Sorted(maps.Keys(apps)), ", ")
}

func waitingApps(hs []*hyp) []string {
	apps := map[string]bool{}
	for _, h := range hs {
		for a := range h.apps {
			apps[a] = true
		}
	}
	return slices.Sorted(maps.Keys(apps))
}

// waitingFor says what an app's replicas wait for: new nodes (being
// created or to create) per pool, and draining nodes taken back.
func waitingFor(app string, hs []*hyp) string {
	fresh := map[string]int{}
	var reused []string
	for _, h := range hs {
		if !h.apps[app] {
			continue
		}
		if h.kind == kindReuse {
			reused = append(reused, h.node.Name)
		} else {
			fresh[h.pool]++
		}
	}
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(fresh)) {
		n := fresh[p]
		nodes := "nodes"
		if n == 1 {
			nodes = "node"
		}
		parts = append(parts, fmt.Sprintf("%d new %s in pool %s", n, nodes, p))
	}
	if len(reused) > 0 {
		slices.Sort(reused)
		parts = append(parts, "draining "+strings.Join(reused, ", ")+" taken back")
	}
	return "waiting for " + strings.Join(parts, " and ")
}

// unhelped says why no pool helps a request.
func unhelped(r sched.Request, pools []Pool) string {
	if len(pools) == 0 {
		return "no pool to grow"
	}
	var whys []string
	for _, p := range pools {
		why := cannotGrow(p)
		if why == "" {
			why = misfit(p, r)
		}
		if why == "" {
			why = "no room left for it"
		}
		whys = append(whys, "pool "+p.Name+": "+why)
	}
	return strings.Join(whys, "; ")
}

func price(t Type) string {
	if t.hourly() == 0 {
		return ""
	}
	return fmt.Sprintf(" at %.4f %s/h", t.hourly(), cmp.Or(t.Currency, "USD"))
}

func cpus(milli int64) string {
	if milli%1000 == 0 {
		return fmt.Sprint(milli / 1000)
	}
	return fmt.Sprintf("%.2f", float64(milli)/1000)
}

func mib(b int64) string {
	if b >= 1<<30 && b%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", b>>30)
	}
	return fmt.Sprintf("%d MiB", b>>20)
}
