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
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/rollout"
	"github.com/moatcloud/moat/internal/sched"
	"github.com/moatcloud/moat/internal/spec"
	"github.com/moatcloud/moat/internal/sshx"
)

// reconcileLoop reconciles when woken (a node event, a deploy) and every
// second regardless: level-triggered, so a missed wake-up only delays.
func (m *Master) reconcileLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := m.reconcile(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-tick.C:
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

func (m *Master) reconcile(ctx context.Context) error {
	w, err := m.look(ctx)
	if err != nil {
		return err
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
		return err
	}
	fencing := m.fence(ctx, w)
	m.converge(ctx, w, fencing)
	if changed {
		// A step taken may allow the next one at once (a rolling update
		// goes on as soon as an old replica is on its way out).
		m.kickReconcile()
	}
	return nil
}

// fence stops every container on a reachable node that belongs to no
// replica the master wants there — replaced while the node was away,
// scaled down, removed — and forgets stopped replicas whose containers are
// gone. It returns, per node, the apps with such containers still running
// there: a singleton's new copy does not start beside its old one. Other
// apps' replicas start at once — a rebooted node that restarted stale
// copies should not hold back the replacements the cluster is waiting for.
func (m *Master) fence(ctx context.Context, w *world) map[string]map[string]bool {
	wanted := map[string]string{} // replica ID → node, desired run
	for _, r := range w.replicas {
		if r.Desired == store.Run {
			wanted[r.ID] = r.Node
		}
	}
	fencing := map[string]map[string]bool{}
	for name, v := range w.views {
		if !v.synced {
			continue
		}
		for id, c := range v.containers {
			if c.Spec.Labels["moat.replica"] == "" || wanted[id] == name {
				continue
			}
			if fencing[name] == nil {
				fencing[name] = map[string]bool{}
			}
			fencing[name][c.Spec.Labels["moat.app"]] = true
			if a := m.agent(name); a != nil {
				a.do(id, "stop", func(ctx context.Context) error { return a.stopAndRemove(ctx, id) })
			}
		}
	}
	for _, r := range w.replicas {
		if r.Desired != store.Stop {
			continue
		}
		v, known := w.views[r.Node]
		_, enrolled := w.nodes[r.Node]
		_, present := v.containers[r.ID]
		if !enrolled || (known && v.synced && !present) {
			if err := m.db.DeleteReplica(ctx, r.ID); err != nil {
				m.log.Error("forget replica", "replica", r.ID, "err", err)
			}
		}
	}
	return fencing
}

// converge makes each reachable node run what the master wants there:
// containers created for new replicas, exited ones started again.
func (m *Master) converge(ctx context.Context, w *world, fencing map[string]map[string]bool) {
	apps := map[string]appState{}
	for _, a := range w.apps {
		apps[a.Name] = a
	}
	for _, r := range w.replicas {
		v, ok := w.views[r.Node]
		a := m.agent(r.Node)
		if r.Desired != store.Run || !ok || !v.synced || a == nil || v.inflight[r.ID] {
			continue
		}
		app, ok := apps[r.App]
		if !ok || (app.spec.Singleton && fencing[r.Node][r.App]) {
			continue
		}
		c, exists := v.containers[r.ID]
		switch {
		case !exists:
			rev, err := m.revisionFor(ctx, app, r)
			if err != nil {
				m.log.Error("replica revision", "replica", r.ID, "err", err)
				continue
			}
			a.do(r.ID, "create", func(ctx context.Context) error { return a.create(ctx, rev, r) })
		case c.State == nodeapi.StateExited && !exitedForGood(c):
			a.do(r.ID, "start", func(ctx context.Context) error {
				_, err := a.api.StartContainer(ctx, r.ID)
				return err
			})
		}
	}
}

// exitedForGood: a container whose restart policy gave up (or that was
// told no) stays down; one stopped by the node's fence, or by a reboot,
// is started again.
func exitedForGood(c nodeapi.Container) bool {
	if c.Spec.Fenced {
		return false
	}
	switch c.Spec.Restart.Policy {
	case nodeapi.RestartAlways:
		return false
	case nodeapi.RestartOnFailure:
		return c.ExitCode == nil || *c.ExitCode == 0 || c.Spec.Restart.MaxRetries > 0
	}
	return true
}

// revisionFor is the revision a replica was created for (its template).
func (m *Master) revisionFor(ctx context.Context, app appState, r store.Replica) (store.Revision, error) {
	if r.Revision == app.rev.Revision {
		return app.rev, nil
	}
	return m.db.GetRevision(ctx, r.App, r.Revision)
}

// replicaState is a replica's state for the rollout planner.
func replicaState(r store.Replica, v view, known bool) (rollout.State, *nodeapi.Container) {
	if !known || v.state != sshx.Up || !v.synced {
		return rollout.Unknown, nil
	}
	c, ok := v.containers[r.ID]
	if !ok {
		return rollout.Pending, nil
	}
	switch c.State {
	case nodeapi.StateCreated:
		return rollout.Pending, &c
	case nodeapi.StateRunning:
		switch c.Health {
		case "", nodeapi.HealthHealthy:
			return rollout.Ready, &c
		case nodeapi.HealthStarting:
			return rollout.Starting, &c
		}
	}
	return rollout.Failed, &c
}
