package master

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/rollout"
	"github.com/moatcloud/moat/internal/sched"
	"github.com/moatcloud/moat/internal/sshx"
)

// reconcileApp moves one app a step towards its target revision, and
// reports whether it changed anything.
func (m *Master) reconcileApp(ctx context.Context, w *world, a appState) (bool, error) {
	var mine []store.Replica
	for _, r := range w.replicas {
		if r.App == a.Name {
			mine = append(mine, r)
		}
	}
	failed, err := m.failover(ctx, w, a, mine)
	if err != nil {
		return false, err
	}
	moving, err := m.rebalance(ctx, w, a, mine)
	if err != nil {
		return false, err
	}
	in, failing := m.rolloutInput(w, a, mine)
	if a.rev.Status == store.StatusFailed && a.Stable == 0 {
		in.Desired = 0 // a first deploy that failed leaves nothing running
	}
	step := rollout.Plan(in)
	for _, id := range step.Stop {
		if err := m.db.StopReplica(ctx, id, fmt.Sprintf("replaced or scaled (revision %d)", a.Revision)); err != nil {
			return false, err
		}
	}
	unplaced, err := m.place(ctx, w, a, mine, step.Start)
	if err != nil {
		return false, err
	}
	judged, err := m.judge(ctx, w, a, step, failing, unplaced)
	return failed || moving || judged || len(step.Stop) > 0 || (step.Start > 0 && unplaced == ""), err
}

// failover stops replicas whose node is down, so the planner replaces
// them elsewhere. A pinned app (volumes) never moves. A singleton moves
// only once its node has been down for the grace period and the node's
// lease, which makes the node stop it, has run out.
func (m *Master) failover(ctx context.Context, w *world, a appState, mine []store.Replica) (bool, error) {
	if a.spec.PinnedNode() != "" {
		return false, nil
	}
	moved := false
	for _, r := range mine {
		v, ok := w.views[r.Node]
		if r.Desired != store.Run || !ok || v.state != sshx.Down {
			continue
		}
		if a.spec.Singleton && !m.surelyStopped(w, v) {
			continue
		}
		m.log.Warn("node down: replacing replica", "app", a.Name, "replica", r.ID, "node", r.Node, "down", w.now.Sub(v.since).Round(time.Millisecond))
		if err := m.db.StopReplica(ctx, r.ID, "node "+r.Node+" down"); err != nil {
			return false, err
		}
		m.db.Audit(ctx, "master", "failover", fmt.Sprintf("%s replica %s: node %s down", a.Name, r.ID, r.Node))
		moved = true
	}
	return moved, nil
}

// surelyStopped says whether a node that is away has certainly stopped its
// fenced containers: it has been down for the singleton grace, and its
// lease from the master has run out (with a second to spare for clocks).
func (m *Master) surelyStopped(w *world, v view) bool {
	return v.state == sshx.Down && w.now.Sub(v.since) >= m.cfg.SingletonGrace &&
		w.now.After(v.leased.Add(m.cfg.LeaseTTL+time.Second))
}

// rolloutInput describes the app to the planner, and names a current
// replica that failed, if any.
func (m *Master) rolloutInput(w *world, a appState, mine []store.Replica) (rollout.Input, string) {
	u := a.spec.Update
	in := rollout.Input{
		Desired: a.spec.Replicas, Strategy: u.Strategy, MaxSurge: u.MaxSurge, MaxUnavailable: u.MaxUnavailable,
		Canary: u.Canary, Singleton: a.spec.Singleton,
		// Only a revision still rolling out waits at its canaries; once
		// deployed (or promoted) it is whole, and a later drain or
		// failover must not cut it back to them.
		Promoted: a.rev.Status != store.StatusProgressing && a.rev.Status != store.StatusCanary,
	}
	var failing string
	for _, r := range mine {
		v, known := w.views[r.Node]
		state, c := replicaState(r, v, known)
		if r.Desired == store.Stop {
			// Still running somewhere reachable (or, for a singleton,
			// possibly running on a node that is away): not yet gone.
			if c != nil || (a.spec.Singleton && state == rollout.Unknown && !m.surelyStopped(w, v)) {
				in.Terminating++
			}
			continue
		}
		current := r.Template == a.rev.Template
		drain := w.nodes[r.Node].Draining || r.Note == noteMoving
		in.Replicas = append(in.Replicas, rollout.Replica{ID: r.ID, Node: r.Node, Current: current, Drain: drain, State: state})
		if current && (state == rollout.Failed || v.refused[r.ID]) && failing == "" {
			failing = r.ID
		}
		if r.Note == noteMoving {
			// A move for spread never costs a ready replica: surge first.
			in.MaxSurge, in.MaxUnavailable = max(in.MaxSurge, 1), 0
		}
	}
	return in, failing
}

// place schedules n new replicas of the target revision and records them;
// it returns why some could not be placed.
func (m *Master) place(ctx context.Context, w *world, a appState, mine []store.Replica, n int) (string, error) {
	if n == 0 {
		return "", nil
	}
	req := sched.Request{
		App: a.Name, Count: n, Labels: a.spec.Placement.Labels, Spread: a.spec.Placement.Spread, Pinned: a.spec.PinnedNode(),
		Resources: sched.Resources{MilliCPU: a.spec.Resources.MilliCPU, MemoryBytes: a.spec.Resources.MemoryBytes},
		Existing:  map[string]int{},
	}
	// Spread counts replicas of the target template only: the old ones
	// are leaving, and counting them would pile the new ones onto
	// whichever node happened to lose its old replica first.
	for _, r := range mine {
		if r.Desired == store.Run && r.Template == a.rev.Template {
			req.Existing[r.Node]++
		}
	}
	res := sched.Place(m.schedNodes(w, m.images.Signers(digest.Digest(a.rev.Image))), req)
	placed := make([]store.Replica, 0, len(res.Nodes))
	for _, node := range res.Nodes {
		placed = append(placed, store.Replica{ID: newReplicaID(a.Name), App: a.Name, Revision: a.Revision, Template: a.rev.Template, Node: node, Desired: store.Run, Created: w.now})
	}
	if err := m.db.AddReplicas(ctx, placed); err != nil {
		return "", err
	}
	switch {
	case len(placed) == 1:
		m.log.Info("replica placed", "app", a.Name, "replica", placed[0].ID, "node", placed[0].Node, "revision", a.Revision)
	case len(placed) > 1:
		m.log.Info("replicas placed", "app", a.Name, "count", len(placed), "nodes", countNodes(placed), "revision", a.Revision)
	}
	if res.Unplaced > 0 {
		return fmt.Sprintf("%d replicas cannot be placed: %s", res.Unplaced, res.Reason), nil
	}
	return "", nil
}

// schedNodes is the scheduler's view: capacity from what each node
// reported, allocation from the replicas the master placed there, and
// whether the node accepts an image signed by imageSigners.
func (m *Master) schedNodes(w *world, imageSigners []string) []sched.Node {
	alloc := w.allocated()
	var out []sched.Node
	for name, n := range w.nodes {
		v, ok := w.views[name]
		out = append(out, sched.Node{
			Name: name, Labels: n.Labels, Allocated: alloc[name],
			Capacity:     sched.Resources{MilliCPU: int64(n.Info.CPUs) * 1000, MemoryBytes: n.Info.MemoryBytes},
			Cordoned:     n.Cordoned || n.Draining,
			Down:         !ok || !v.synced,
			RefusesImage: !accepts(n.Info, imageSigners),
		})
	}
	return out
}

// Statuses the master uses besides the store's.
const statusPromoted = "promoted" // a canary revision told to go on

// judge records how the target revision's rollout goes: deployed, waiting
// for promotion, or failed — and then rolled back to the last stable
// revision, with the failing replica's last lines in the message.
func (m *Master) judge(ctx context.Context, w *world, a appState, step rollout.Step, failing, unplaced string) (bool, error) {
	switch a.rev.Status {
	case store.StatusProgressing, store.StatusCanary, statusPromoted:
	default:
		return false, nil
	}
	switch {
	case step.Phase == rollout.Done:
		m.log.Info("revision deployed", "app", a.Name, "revision", a.Revision)
		m.db.Audit(ctx, "master", "deployed", fmt.Sprintf("%s revision %d", a.Name, a.Revision))
		return true, m.db.SetStatus(ctx, a.Name, a.Revision, store.StatusDeployed, "")
	case failing != "":
		return true, m.fail(ctx, w, a, m.describeFailure(ctx, w, failing))
	case w.now.Sub(a.rev.Created) > a.spec.Update.Deadline:
		why := fmt.Sprintf("not healthy within the %s deadline", a.spec.Update.Deadline)
		if unplaced != "" {
			why += ": " + unplaced
		}
		return true, m.fail(ctx, w, a, why)
	case m.stuck(a, unplaced, w.now) && !couldGrow(w):
		// Nothing will make room by itself: waiting out the deadline
		// would only make the operator wait.
		return true, m.fail(ctx, w, a, unplaced)
	case step.Phase == rollout.Waiting && a.spec.Update.Promote == "auto":
		return true, m.db.SetStatus(ctx, a.Name, a.Revision, statusPromoted, "")
	case step.Phase == rollout.Waiting && a.rev.Status != store.StatusCanary:
		return true, m.db.SetStatus(ctx, a.Name, a.Revision, store.StatusCanary, "canaries healthy: moat promote "+a.Name+" to go on")
	case unplaced != "" && a.rev.Message != unplaced:
		return false, m.db.SetStatus(ctx, a.Name, a.Revision, a.rev.Status, unplaced)
	}
	return false, nil
}

// failFastAfter is how long replicas must stay unplaceable, with every
// node up, before their revision fails without waiting for its deadline:
// long enough for replicas on their way out to free their room.
const failFastAfter = 2 * time.Second

// stuck says whether the revision's replicas have been unplaceable for
// failFastAfter; it remembers since when, per app and revision.
func (m *Master) stuck(a appState, unplaced string, now time.Time) bool {
	key := fmt.Sprintf("%s@%d", a.Name, a.Revision)
	if unplaced == "" {
		delete(m.unplacedSince, key)
		return false
	}
	since, ok := m.unplacedSince[key]
	if !ok {
		m.unplacedSince[key] = now
		return false
	}
	return now.Sub(since) >= failFastAfter
}

// couldGrow says whether room may still appear without anyone acting: a
// node that is down or not yet in sync may come back with its capacity.
func couldGrow(w *world) bool {
	for name := range w.nodes {
		if v, ok := w.views[name]; !ok || !v.synced {
			return true
		}
	}
	return false
}

// fail marks the revision failed and goes back to the stable one.
func (m *Master) fail(ctx context.Context, w *world, a appState, why string) error {
	m.log.Warn("revision failed", "app", a.Name, "revision", a.Revision, "why", firstLine(why))
	if err := m.db.SetStatus(ctx, a.Name, a.Revision, store.StatusFailed, why); err != nil {
		return err
	}
	m.db.Audit(ctx, "master", "deploy failed", fmt.Sprintf("%s revision %d: %s", a.Name, a.Revision, firstLine(why)))
	if a.Stable == 0 || a.Stable == a.Revision {
		return nil
	}
	stable, err := m.db.GetRevision(ctx, a.Name, a.Stable)
	if err != nil {
		return err
	}
	back, err := m.db.NewRevision(ctx, store.Revision{
		App: a.Name, Spec: stable.Spec, Image: stable.Image, Template: stable.Template,
		Cause: fmt.Sprintf("automatic rollback from %d to %d", a.Revision, a.Stable),
	})
	if err != nil {
		return err
	}
	m.log.Warn("rolled back", "app", a.Name, "from", a.Revision, "to", a.Stable, "revision", back.Revision)
	return nil
}

// describeFailure says what went wrong with a replica, with its last log
// lines, fetched from its node now (before the rollback removes it).
func (m *Master) describeFailure(ctx context.Context, w *world, id string) string {
	var r store.Replica
	for _, x := range w.replicas {
		if x.ID == id {
			r = x
		}
	}
	v := w.views[r.Node]
	c, ok := v.containers[id]
	var b strings.Builder
	if !ok && v.refused[id] {
		fmt.Fprintf(&b, "replica %s on %s: refused: %s", id, r.Node, v.lastErr[id])
		return b.String()
	}
	fmt.Fprintf(&b, "replica %s on %s: %s", id, r.Node, c.State)
	switch {
	case c.Health == "unhealthy":
		fmt.Fprintf(&b, ", unhealthy (%s)", c.HealthOutput)
	case c.ExitCode != nil:
		fmt.Fprintf(&b, ", exit code %d", *c.ExitCode)
		if c.Error != "" {
			fmt.Fprintf(&b, " (%s)", c.Error)
		}
	}
	if c.Restarts > 0 {
		fmt.Fprintf(&b, ", %d restarts", c.Restarts)
	}
	if lines := m.lastLines(ctx, r.Node, id, 15); len(lines) > 0 {
		b.WriteString("\nlast log lines:\n  " + strings.Join(lines, "\n  "))
	}
	return b.String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// accepts says whether a node runs an image signed by these keys, as far
// as the master can tell from what the node reported (the node decides).
func accepts(info nodeapi.NodeInfo, imageSigners []string) bool {
	if !info.RequireSigned {
		return true
	}
	for _, s := range info.Signers {
		f := strings.Fields(s)
		if len(f) > 0 && slices.Contains(imageSigners, f[len(f)-1]) {
			return true
		}
	}
	return false
}

// countNodes is how many nodes some replicas are on.
func countNodes(rs []store.Replica) int {
	nodes := map[string]bool{}
	for _, r := range rs {
		nodes[r.Node] = true
	}
	return len(nodes)
}
