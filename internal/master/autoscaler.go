package master

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/autoscale"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/sched"
	"github.com/moatcloud/moat/internal/sshx"
)

// The cluster autoscaler: on every reconcile pass that leaves replicas
// unplaceable it decides a scale-up (autoscale.Up) at once, and every
// scaleDownEvery it looks for idle pool nodes (autoscale.Down); the pool
// manager (pools_manager.go) acts — growPool raises a pool's desired
// size, retireNode drains and destroys a node, reuseNode takes a draining
// one back. It remembers its last decisions, taken and not, for moat
// autoscaler status, and tells the deploys it helps what they wait for,
// so that they wait instead of failing.

// scaleDownEvery is how often idle nodes are looked for (at most; a pool
// with a short idle period is looked at four times per period).
const scaleDownEvery = 10 * time.Second

// joinGrace is how long after its registration a pool node that is not
// in sync, or has not reported its size, counts as coming.
const joinGrace = 2 * time.Minute

// maxScalerActions bounds the actions remembered for status.
const maxScalerActions = 50

// Event kinds of the cluster autoscaler.
const (
	eventScaleUp   = "scale-up"   // nodes asked of a pool, or a draining node taken back
	eventScaleDown = "scale-down" // an idle node retired
)

// scalerPool is a pool as the autoscaler reads it: its definition, its
// server types resolved (preference order), its servers, its breaker.
type scalerPool struct {
	store.Pool
	Types         []provider.ServerType
	Servers       []store.PoolServer
	BreakerOpen   bool
	BreakerReason string
}

// scalerOps is what the autoscaler asks of the pool manager; a zero value
// (no pools func) leaves the cluster as it is, and without reuse no
// draining node is taken back.
type scalerOps struct {
	pools  func(ctx context.Context) ([]scalerPool, error)
	grow   func(ctx context.Context, pool string, n int, why string) error
	retire func(ctx context.Context, node, why string) error
	reuse  func(ctx context.Context, node, why string) error
}

// scaler is the cluster autoscaler's state. The maps are reconcile's
// goroutine's; what status reads is under mu.
type scaler struct {
	ops       scalerOps
	opsOnce   sync.Once
	waiting   map[string]string    // app key → what its replicas wait for
	idleSince map[string]time.Time // node → since when it is idle
	lastDown  time.Time
	downEvery time.Duration // from the pools last read (downEvery)
	// waitedUntil: per app revision ("app@rev"), the last pass its
	// replicas waited for new nodes (its deadline runs from then).
	waitedUntil map[string]time.Time

	mu      sync.Mutex
	up      *masterapi.ScaleUpDecision
	down    *masterapi.ScaleDownDecision
	actions []masterapi.AutoscalerAction
}

// scalerOps returns the pool manager's operations (poolScalerOps), once.
func (m *Master) scalerOps() scalerOps {
	s := &m.scaler
	s.opsOnce.Do(func() {
		if s.ops.pools == nil {
			s.ops = m.poolScalerOps()
		}
	})
	return s.ops
}

// waited notes that an app revision's replicas wait for new nodes now.
func (s *scaler) waited(key string, now time.Time) {
	if s.waitedUntil == nil {
		s.waitedUntil = map[string]time.Time{}
	}
	s.waitedUntil[key] = now
}

// forgetWaits forgets the waits of an app's other revisions, and of key
// too once it is judged (done).
func (s *scaler) forgetWaits(app, key string, done bool) {
	for k := range s.waitedUntil {
		if (k != key || done) && strings.HasPrefix(k, app+"@") {
			delete(s.waitedUntil, k)
		}
	}
}

// waitingFor says what an app's unplaceable replicas wait for (new nodes,
// a draining node taken back), or "" when no pool helps them.
func (m *Master) waitingFor(app string) string { return m.scaler.waiting[app] }

// autoscale runs the cluster autoscaler's part of a reconcile pass: a
// scale-up decision when replicas were left unplaceable, a scale-down one
// when it is time.
func (m *Master) autoscale(ctx context.Context, w *world) {
	ops := m.scalerOps()
	s := &m.scaler
	if ops.pools == nil {
		return
	}
	downDue := w.now.Sub(s.lastDown) >= cmp.Or(s.downEvery, scaleDownEvery)
	if len(w.unplaced) == 0 && len(s.waiting) == 0 && !downDue {
		return
	}
	pools, err := ops.pools(ctx)
	if err != nil {
		m.log.Error("autoscaler: read the pools", "err", err)
		return
	}
	s.downEvery = downEvery(pools)
	if len(w.unplaced) > 0 {
		m.scaleUp(ctx, w, pools, ops)
	} else if len(s.waiting) > 0 {
		// The replicas that waited are placed: say so, rather than keep
		// showing them waiting until the next replica has no room.
		s.waiting = nil
		s.mu.Lock()
		s.up = &masterapi.ScaleUpDecision{Time: w.now}
		s.mu.Unlock()
	}
	if w.now.Sub(s.lastDown) >= s.downEvery {
		s.lastDown = w.now
		m.scaleDown(ctx, w, pools, ops)
	}
}

// downEvery is how often idle nodes are looked for: scaleDownEvery, or a
// quarter of the shortest idle period (at least a second).
func downEvery(pools []scalerPool) time.Duration {
	every := scaleDownEvery
	for _, p := range pools {
		if p.Cloud() && p.IdleAfter > 0 {
			every = min(every, max(p.IdleAfter/4, time.Second))
		}
	}
	return every
}

// scaleUp decides and asks for the nodes the unplaceable replicas need.
func (m *Master) scaleUp(ctx context.Context, w *world, pools []scalerPool, ops scalerOps) {
	start := time.Now()
	in, draining := scalerPools(w, pools)
	if ops.reuse == nil {
		draining = nil
	}
	poolRefuses(w, in, func(app string) []string { return m.appSigners(w, app) })
	existing := map[string][]sched.Node{}
	for _, r := range w.unplaced {
		existing[r.App] = schedNodes(w, m.appSigners(w, r.App))
	}
	plan := autoscale.Up(w.unplaced, in, draining, existing)
	s := &m.scaler
	s.waiting = plan.Waiting
	d := &masterapi.ScaleUpDecision{Time: w.now, Reuse: plan.Reuse, Took: time.Since(start)}
	count := map[string]int{}
	for _, r := range w.unplaced {
		count[r.App] += r.Count
	}
	for _, app := range slices.Sorted(maps.Keys(count)) {
		d.Unplaced = append(d.Unplaced, masterapi.UnplacedApp{App: app, Replicas: count[app], Waiting: plan.Waiting[app], Unhelped: plan.Unhelped[app]})
	}
	for _, p := range plan.Pools {
		d.Pools = append(d.Pools, masterapi.PoolDecision{Pool: p.Pool, Add: p.Add, Reason: p.Reason})
	}
	s.mu.Lock()
	s.up = d
	s.mu.Unlock()
	for _, node := range plan.Reuse {
		why := "replicas of " + strings.Join(slices.Sorted(maps.Keys(count)), ", ") + " fit on no node"
		err := ops.reuse(ctx, node, why)
		m.scalerAction(masterapi.AutoscalerAction{Time: w.now, Kind: masterapi.ActionReuse, Node: node, Reason: why}, err)
	}
	for _, g := range plan.Grow {
		err := ops.grow(ctx, g.Pool, g.N, g.Why)
		m.scalerAction(masterapi.AutoscalerAction{Time: w.now, Kind: masterapi.ActionGrow, Pool: g.Pool, Count: g.N, Reason: g.Why}, err)
	}
}

// scaleDown decides which idle pool nodes to retire, and has them retired.
func (m *Master) scaleDown(ctx context.Context, w *world, pools []scalerPool, ops scalerOps) {
	s := &m.scaler
	in := scalerDownInput(w, pools, s.idleSince, s.waiting, func(app string) []string { return m.appSigners(w, app) })
	notes := autoscale.Down(in)
	s.idleSince = map[string]time.Time{}
	d := &masterapi.ScaleDownDecision{Time: w.now, Pending: in.Pending}
	for _, n := range notes {
		if !n.IdleSince.IsZero() {
			s.idleSince[n.Node] = n.IdleSince
		}
		d.Nodes = append(d.Nodes, masterapi.NodeDecision{Node: n.Node, Pool: n.Pool, Retire: n.Retire, IdleSince: n.IdleSince, Reason: n.Reason})
	}
	s.mu.Lock()
	s.down = d
	s.mu.Unlock()
	for _, n := range notes {
		if n.Retire {
			err := ops.retire(ctx, n.Node, n.Reason)
			m.scalerAction(masterapi.AutoscalerAction{Time: w.now, Kind: masterapi.ActionRetire, Pool: n.Pool, Node: n.Node, Reason: n.Reason}, err)
		}
	}
}

// scalerAction remembers an action, logs it and records its event.
func (m *Master) scalerAction(a masterapi.AutoscalerAction, err error) {
	if err != nil {
		a.Error = err.Error()
	}
	s := &m.scaler
	s.mu.Lock()
	s.actions = append(s.actions, a)
	if len(s.actions) > maxScalerActions {
		s.actions = slices.Delete(s.actions, 0, len(s.actions)-maxScalerActions)
	}
	s.mu.Unlock()
	var kind, msg string
	switch a.Kind {
	case masterapi.ActionGrow:
		kind, msg = eventScaleUp, fmt.Sprintf("pool %s: %d new nodes: %s", a.Pool, a.Count, a.Reason)
	case masterapi.ActionReuse:
		kind, msg = eventScaleUp, fmt.Sprintf("draining node %s taken back: %s", a.Node, a.Reason)
	default:
		kind, msg = eventScaleDown, fmt.Sprintf("pool %s: node %s retired: %s", a.Pool, a.Node, a.Reason)
	}
	if err != nil {
		m.log.Error("autoscaler", "action", a.Kind, "pool", a.Pool, "node", a.Node, "err", err)
		msg += " (failed: " + err.Error() + ")"
	} else {
		m.log.Info("autoscaler", "action", a.Kind, "pool", a.Pool, "node", a.Node, "count", a.Count, "why", a.Reason)
	}
	m.RecordEvent(masterapi.Event{Kind: kind, Node: a.Node, Message: msg})
}

// AutoscalerStatus is the autoscalers' last decisions, as the caller may
// see them: a caller who may not list nodes sees its tenant's apps only.
func (m *Master) AutoscalerStatus(ctx context.Context, nodes bool) (masterapi.AutoscalerStatus, error) {
	s := &m.scaler
	s.mu.Lock()
	var out masterapi.AutoscalerStatus
	if s.up != nil {
		up := *s.up
		up.Unplaced = slices.Clone(up.Unplaced)
		out.ScaleUp = &up
	}
	if s.down != nil && nodes {
		down := *s.down
		out.ScaleDown = &down
	}
	if nodes {
		out.Actions = slices.Clone(s.actions)
	}
	s.mu.Unlock()
	if up := out.ScaleUp; up != nil {
		up.Unplaced = slices.DeleteFunc(up.Unplaced, func(u masterapi.UnplacedApp) bool { return !seesTenant(ctx, keyTenant(u.App)) })
		if !nodes {
			up.Pools, up.Reuse = nil, nil
			for i, u := range up.Unplaced {
				up.Unplaced[i].App = appName(u.App)
				if u.Unhelped != "" {
					up.Unplaced[i].Unhelped = "no pool can take them"
				}
			}
		}
	}
	out.Apps = m.appAutoscale(ctx)
	return out, nil
}

// scalerPools is the pools as autoscale.Up sees them (cloud pools only:
// a static pool never grows), and the draining pool nodes it may take
// back. A server counts as Ready once its node is up, in sync and not
// cordoned; as Coming while it is created, boots, enrols, or its node is
// not yet in sync or has not reported its size — and so does the part of desired no server stands for
// yet (growPool raised it; the manager has not created them), unless the
// breaker stops the pool creating. A node an operator cordoned, or one
// down (or silent about its size) joinGrace after it joined, is neither,
// and lowers the room under max.
func scalerPools(w *world, pools []scalerPool) ([]autoscale.Pool, []autoscale.Draining) {
	var out []autoscale.Pool
	var draining []autoscale.Draining
	var all []sched.Node
	for _, p := range pools {
		if !p.Cloud() || p.Removing {
			continue
		}
		ap := autoscale.Pool{Name: p.Name, Min: p.Min, Max: p.Max, Tenant: cmp.Or(p.Tenant, store.DefaultTenant), Shared: p.Shared,
			Labels: poolNodeLabels(p.Pool), BreakerOpen: p.BreakerOpen, BreakerReason: p.BreakerReason,
			IdleAfter: p.IdleAfter, KeepBilledHour: p.KeepBilledHour}
		held := 0
		for _, t := range p.Types {
			ap.Types = append(ap.Types, autoscale.Type{Name: t.Name, MilliCPU: t.CPUMilli, MemoryBytes: t.MemoryBytes,
				Hourly: t.Hourly, Monthly: t.Monthly, Currency: t.Currency, BilledHourly: t.BilledHourly})
		}
		for _, sv := range p.Servers {
			switch sv.State {
			case store.ServerCreating, store.ServerBooting, store.ServerEnrolling:
				ap.Coming++
			case store.ServerReady:
				n, known := w.nodes[sv.Name]
				v, seen := w.views[sv.Name]
				switch {
				case !known:
					ap.Coming++ // registered after this pass looked
				case !seen || !v.synced || n.Info.CPUs == 0 || n.Info.MemoryBytes == 0:
					// Not in sync, or its size not reported: the
					// scheduler cannot use it. Just joined, its
					// type stands in for it; later it is down or
					// silent (what a node says is untrusted): it
					// takes a place under max, and replicas it
					// cannot take get new nodes.
					if w.now.Sub(n.Enrolled) < joinGrace {
						ap.Coming++
					} else {
						held++
					}
				case !n.Cordoned && !n.Draining:
					ap.Ready++
				default:
					held++
				}
			case store.ServerRetiring:
				if _, known := w.nodes[sv.Name]; known {
					if all == nil {
						all = schedNodes(w, nil)
					}
					for _, sn := range all {
						if sn.Name == sv.Name && !sn.Down {
							// Its pool's image trusts what its
							// other nodes do.
							sn.RefusesImage = false
							draining = append(draining, autoscale.Draining{Node: sn, Pool: p.Name})
						}
					}
				}
			}
		}
		if owed := p.Desired - ap.Ready - ap.Coming - held; owed > 0 && !p.BreakerOpen {
			ap.Coming += owed
		}
		// A node an operator cordoned takes no replicas but a place
		// under max.
		ap.Max -= held
		out = append(out, ap)
	}
	return out, draining
}

// downSince is since when a node is down, as its connection says (zero
// when it is up or still connecting).
func downSince(v view) time.Time {
	if v.state != sshx.Down || v.synced {
		return time.Time{}
	}
	return v.since
}

// poolRefuses notes, for each pool, the unplaced apps whose image its
// nodes refuse: a node of it reported a signing policy that does not take
// the image's signers (a pool's nodes share the operator's image, so one
// speaks for all; one that has not reported speaks for none). A new node
// of that pool would refuse them too: no scale-up for them there (each
// node bought would stay empty, be retired idle, and be bought again).
func poolRefuses(w *world, pools []autoscale.Pool, signers func(app string) []string) {
	apps := map[string]bool{}
	for _, r := range w.unplaced {
		apps[r.App] = true
	}
	for app := range apps {
		ref := refusing(w, signers(app))
		for i := range pools {
			for name, n := range w.nodes {
				if ref[name] && store.NodePool(n.Labels) == pools[i].Name {
					if pools[i].Refuses == nil {
						pools[i].Refuses = map[string]bool{}
					}
					pools[i].Refuses[app] = true
					break
				}
			}
		}
	}
}

// refusing are the nodes that do not accept an image signed by signers.
func refusing(w *world, signers []string) map[string]bool {
	out := map[string]bool{}
	for name, n := range w.nodes {
		if !accepts(nodeInfo(n.Info), signers) {
			out[name] = true
		}
	}
	return out
}

// poolNodeLabels are the labels a node of the pool is registered with:
// the pool's, and the pool's name under store.PoolLabel.
func poolNodeLabels(p store.Pool) map[string]string {
	l := maps.Clone(p.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[store.PoolLabel] = p.Name
	return l
}

// appSigners are the keys that signed an app's target image.
func (m *Master) appSigners(w *world, app string) []string {
	for _, a := range w.apps {
		if a.Name == app && m.images != nil {
			return m.images.Signers(digest.Digest(a.rev.Image))
		}
	}
	return nil
}

// scalerDownInput is what autoscale.Down looks at: the ready nodes of the
// cloud pools, each with its replicas, the apps whose volumes it holds,
// the singletons on it, its billing, and its idle clock (idleSince); and
// which nodes refuse each app's image (signers: the keys that signed it).
// Nothing is retired while replicas wait for nodes the autoscaler is
// getting (waiting, by app) or nodes are on their way; replicas no pool
// can help hold nothing back (a pinned app whose node is gone would
// otherwise keep every idle node forever).
func scalerDownInput(w *world, pools []scalerPool, idleSince map[string]time.Time, waiting map[string]string, signers func(app string) []string) autoscale.DownInput {
	in := autoscale.DownInput{Now: w.now, Cluster: schedNodes(w, nil), Refuses: map[string]map[string]bool{}}
	ups, _ := scalerPools(w, pools)
	in.Pools = ups
	byName := map[string]sched.Node{}
	for _, n := range in.Cluster {
		byName[n.Name] = n
	}
	specs := map[string]appState{}
	for _, a := range w.apps {
		specs[a.Name] = a
	}
	coming := 0
	for _, p := range ups {
		coming += p.Coming
	}
	switch {
	case len(waiting) > 0:
		in.Pending = "replicas of " + strings.Join(slices.Sorted(maps.Keys(waiting)), ", ") + " wait for new nodes"
	case coming > 0:
		in.Pending = fmt.Sprintf("%d nodes on their way", coming)
	}
	for _, p := range pools {
		if !p.Cloud() {
			continue
		}
		types := map[string]provider.ServerType{}
		for _, t := range p.Types {
			types[t.Name] = t
		}
		for _, sv := range p.Servers {
			node, known := w.nodes[sv.Name]
			if !known || (sv.State != store.ServerReady && sv.State != store.ServerRetiring) {
				continue
			}
			v := w.views[sv.Name]
			an := autoscale.Node{Name: sv.Name, Pool: p.Name, Sched: byName[sv.Name], Ready: v.synced, DownSince: downSince(v),
				Cordoned: (node.Cordoned || node.Draining) && sv.State != store.ServerRetiring, Retiring: sv.State == store.ServerRetiring,
				BilledSince: sv.BilledSince, BilledHourly: types[sv.Type].BilledHourly, IdleSince: idleSince[sv.Name]}
			on := map[string]int{}
			singles := map[string]bool{}
			for _, r := range w.replicas {
				if r.Node != sv.Name {
					continue
				}
				if a, ok := specs[r.App]; ok && a.spec.Singleton {
					singles[r.App] = true
				}
				if r.Desired == store.Run {
					on[r.App]++
				}
			}
			for _, app := range slices.Sorted(maps.Keys(on)) {
				a := specs[app]
				if _, ok := in.Refuses[app]; !ok {
					in.Refuses[app] = refusing(w, signers(app))
				}
				an.Apps = append(an.Apps, sched.Request{App: app, Tenant: keyTenant(app), Count: on[app], Labels: a.spec.Placement.Labels,
					Spread: a.spec.Placement.Spread, Resources: sched.Resources{MilliCPU: a.spec.Resources.MilliCPU, MemoryBytes: a.spec.Resources.MemoryBytes}})
			}
			for _, a := range w.apps {
				if a.spec.PinnedNode() == sv.Name {
					an.Pinned = append(an.Pinned, a.Name)
				}
			}
			an.Singletons = slices.Sorted(maps.Keys(singles))
			in.Nodes = append(in.Nodes, an)
		}
	}
	slices.SortFunc(in.Nodes, func(a, b autoscale.Node) int { return cmp.Compare(a.Name, b.Name) })
	return in
}
