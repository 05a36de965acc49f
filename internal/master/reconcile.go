package master

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/sched"
	"github.com/moatcloud/moat/internal/spec"
)

// reconcileLoop reconciles when woken (a node event, a deploy) and every
// second regardless: level-triggered, so a missed wake-up only delays.
// After a pass that was woken or changed something, clients watching a
// rollout are told its progress may have changed.
func (m *Master) reconcileLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	woken := true
	for {
		start := time.Now()
		changed, err := m.reconcile(ctx)
		m.timings.Reconciled(time.Since(start).Seconds(), err != nil)
		if err != nil && ctx.Err() == nil {
			m.log.Error("reconcile", "err", err)
		}
		if woken || changed {
			m.progressChanged()
		}
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
			woken = true
		case <-tick.C:
			woken = false
		}
	}
}

// world is one consistent look at desired and observed state.
type world struct {
	now      time.Time
	nodes    map[string]store.Node
	views    map[string]view
	apps     []appState
	replicas []store.Replica
	alloc    map[string]sched.Resources // per node, what its replicas reserve; by allocated()
	// unplaced are the replicas this pass could place nowhere, one
	// request per app, Count how many: what the cluster autoscaler is
	// asked about (autoscaler.go).
	unplaced []sched.Request
}

// allocated is what the replicas the master wants running reserve on each
// node, summed once per look: the scheduler asks for every app.
func (w *world) allocated() map[string]sched.Resources {
	if w.alloc != nil {
		return w.alloc
	}
	specs := map[string]spec.Resources{}
	for _, a := range w.apps {
		specs[a.Name] = a.spec.Resources
	}
	w.alloc = map[string]sched.Resources{}
	for _, r := range w.replicas {
		if res, ok := specs[r.App]; ok && r.Desired == store.Run {
			x := w.alloc[r.Node]
			x.MilliCPU += res.MilliCPU
			x.MemoryBytes += res.MemoryBytes
			w.alloc[r.Node] = x
		}
	}
	return w.alloc
}

// nodesKey sums up what rebalancing depends on of the nodes: names, state,
// cordons, capacity. Equal keys: nothing changed for spreading.
func (w *world) nodesKey() string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(w.nodes)) {
		n, v := w.nodes[name], w.views[name]
		fmt.Fprintf(&b, "%s:%s:%t:%t:%t:%d:%d;", name, v.state, v.synced, n.Cordoned, n.Draining, n.Info.CPUs, n.Info.MemoryBytes)
	}
	return b.String()
}

type appState struct {
	store.App
	rev  store.Revision
	spec spec.App
}

func (m *Master) look(ctx context.Context) (*world, error) {
	nodes, err := m.db.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	w := &world{now: time.Now(), nodes: make(map[string]store.Node, len(nodes)), views: make(map[string]view, len(nodes))}
	for _, n := range nodes {
		w.nodes[n.Name] = n
		if a := m.agent(n.Name); a != nil {
			w.views[n.Name] = a.view()
		}
	}
	apps, err := m.db.Apps(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		rev, err := m.db.GetRevision(ctx, a.Name, a.Revision)
		if err != nil {
			return nil, err
		}
		sp, err := m.specOf(rev)
		if err != nil {
			return nil, err
		}
		w.apps = append(w.apps, appState{App: a, rev: rev, spec: sp})
	}
	w.replicas, err = m.db.Replicas(ctx)
	return w, err
}

// specOf decodes a revision's spec, once: a revision never changes its
// spec, and every reconcile pass (and every view) wants every app's.
func (m *Master) specOf(rev store.Revision) (spec.App, error) {
	key := fmt.Sprintf("%s@%d", rev.App, rev.Revision)
	if sp, ok := m.specs.Load(key); ok {
		return sp.(spec.App), nil
	}
	var sp spec.App
	if err := json.Unmarshal(rev.Spec, &sp); err != nil {
		return sp, fmt.Errorf("app %s revision %d: %w", rev.App, rev.Revision, err)
	}
	m.specs.Store(key, sp)
	return sp, nil
}

// refresh takes a new look at what reconciling the apps changed: the
// replicas, and the nodes' views. Apps and nodes are as they were.
func (m *Master) refresh(ctx context.Context, w *world) error {
	for name := range w.nodes {
		if a := m.agent(name); a != nil {
			w.views[name] = a.view()
		}
	}
	var err error
	w.replicas, w.alloc = nil, nil
	w.replicas, err = m.db.Replicas(ctx)
	return err
}

// reconcile makes one pass, and reports whether it changed the apps'
// replicas or revisions.
func (m *Master) reconcile(ctx context.Context) (bool, error) {
	w, err := m.look(ctx)
	if err != nil {
		return false, err
	}
	changed := false
	for _, a := range w.apps {
		c, err := m.reconcileApp(ctx, w, a)
		if err != nil {
			m.log.Error("reconcile app", "app", a.Name, "err", err)
		}
		changed = changed || c
	}
	// Act on nodes with what the apps now want.
	if err := m.refresh(ctx, w); err != nil {
		return changed, err
	}
	m.autoscale(ctx, w)
	fencing := m.fence(ctx, w)
	m.converge(ctx, w, fencing)
	m.syncLinks(ctx, w)
	if changed {
		// A step taken may allow the next one at once (a rolling update
		// goes on as soon as an old replica is on its way out).
		m.kickReconcile()
	}
	return changed, nil
}

// fence stops every container on a reachable node that belongs to no
// replica the master wants there — replaced while the node was away,
// scaled down, removed — and forgets stopped replicas whose containers are
// gone (planFence). It returns, per node, the apps with such containers
// still running there: a singleton's new copy does not start beside its
// old one. Other apps' replicas start at once — a rebooted node that
// restarted stale copies should not hold back the replacements the
// cluster is waiting for.
func (m *Master) fence(ctx context.Context, w *world) map[string]map[string]bool {
	p := planFence(w, drainHold(w, m.drainSince))
	for _, c := range p.Stop {
		if a := m.agent(c.Node); a != nil {
			id := c.ID
			a.do(id, "stop", func(ctx context.Context) error { return a.stopAndRemove(ctx, id) })
		}
	}
	for _, id := range p.Forget {
		if err := m.db.DeleteReplica(ctx, id); err != nil {
			m.log.Error("forget replica", "replica", id, "err", err)
		}
	}
	return p.Fencing
}

// converge makes each reachable node run what the master wants there
// (convergeOp): containers created for new replicas, exited ones started
// again.
func (m *Master) converge(ctx context.Context, w *world, fencing map[string]map[string]bool) {
	apps := map[string]appState{}
	for _, a := range w.apps {
		apps[a.Name] = a
	}
	for _, r := range w.replicas {
		op := convergeOp(w, r, apps, fencing)
		if op == opNone {
			continue
		}
		a := m.agent(r.Node)
		if a == nil {
			continue
		}
		switch op {
		case opCreate:
			rev, err := m.revisionFor(ctx, apps[r.App], r)
			if err != nil {
				m.log.Error("replica revision", "replica", r.ID, "err", err)
				continue
			}
			a.do(r.ID, "create", func(ctx context.Context) error { return a.create(ctx, rev, r) })
		case opStart:
			a.do(r.ID, "start", func(ctx context.Context) error {
				_, err := a.api.StartContainer(ctx, r.ID)
				return err
			})
		}
	}
}

// revisionFor is the revision a replica was created for (its template).
func (m *Master) revisionFor(ctx context.Context, app appState, r store.Replica) (store.Revision, error) {
	if r.Revision == app.rev.Revision {
		return app.rev, nil
	}
	return m.db.GetRevision(ctx, r.App, r.Revision)
}
