package master

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/rollout"
	"github.com/moatcloud/moat/internal/sched"
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
	in, failing := rolloutInput(w, a, mine, m.fenceTimes())
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

// failover stops the replicas whose node is down (failoverStops), so the
// planner replaces them elsewhere.
func (m *Master) failover(ctx context.Context, w *world, a appState, mine []store.Replica) (bool, error) {
	stops := failoverStops(w, a, mine, m.fenceTimes())
	if len(stops) == 0 {
		return false, nil
	}
	// One audit entry for the app's whole failover, before any of it: a
	// node holding fifty replicas costs one append, not fifty.
	var which []string
	for _, r := range stops {
		which = append(which, fmt.Sprintf("replica %s: node %s down", r.ID, r.Node))
	}
	if err := m.record(ctx, "failover", a.Name, strings.Join(which, "; ")); err != nil {
		return false, err
	}
	for _, r := range stops {
		m.log.Warn("node down: replacing replica", "app", a.Name, "replica", r.ID, "node", r.Node, "down", w.now.Sub(w.views[r.Node].since).Round(time.Millisecond))
		if err := m.db.StopReplica(ctx, r.ID, "node "+r.Node+" down"); err != nil {
			return false, err
		}
	}
	return len(stops) > 0, nil
}

// fenceTimes are the master's timings for fencing singletons.
func (m *Master) fenceTimes() fenceTimes {
	return fenceTimes{Grace: m.cfg.SingletonGrace, LeaseTTL: m.cfg.LeaseTTL}
}

// place schedules n new replicas of the target revision and records them;
// it returns why some could not be placed.
func (m *Master) place(ctx context.Context, w *world, a appState, mine []store.Replica, n int) (string, error) {
	if n == 0 {
		return "", nil
	}
	req := placeRequest(a, mine, n)
	res := sched.Place(schedNodes(w, m.images.Signers(digest.Digest(a.rev.Image))), req)
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
		left := req
		left.Count = res.Unplaced
		w.unplaced = append(w.unplaced, left)
		return fmt.Sprintf("%d replicas cannot be placed: %s", res.Unplaced, res.Reason), nil
	}
	return "", nil
}

// Statuses the master uses besides the store's.
const statusPromoted = "promoted" // a canary revision told to go on

// judge records the verdict on the target revision's rollout
// (judgeRevision): deployed, waiting for promotion, or failed — and then
// rolled back to the last stable revision, with the failing replica's
// last lines in the message. It remembers, per app and revision, since
// when replicas could not be placed.
func (m *Master) judge(ctx context.Context, w *world, a appState, step rollout.Step, failing, unplaced string) (bool, error) {
	if !inProgress(a.rev.Status) {
		return false, nil // judged already: nothing to ask
	}
	key := fmt.Sprintf("%s@%d", a.Name, a.Revision)
	// Replicas the cluster autoscaler is getting nodes for wait for them
	// (autoscaler.go), saying so.
	waiting := ""
	if unplaced != "" {
		waiting = m.waitingFor(a.Name)
	}
	if waiting != "" {
		unplaced += ": " + waiting
		m.scaler.waited(key, w.now)
	}
	j := judgeRevision(judgeInput{
		App: a.Name, Status: a.rev.Status, Message: a.rev.Message, Created: a.rev.Created,
		Deadline: a.spec.Update.Deadline, AutoPromote: a.spec.Update.Promote == "auto",
		Phase: step.Phase, Failing: failing, Unplaced: unplaced, UnplacedSince: m.unplacedSince[key],
		CouldGrow: couldGrow(w) || waiting != "", WaitingForNodes: waiting != "", WaitedUntil: m.scaler.waitedUntil[key], Now: w.now,
	})
	// One entry per app at most, and none once its revision is judged:
	// an earlier revision's (superseded while it waited) goes too.
	for k := range m.unplacedSince {
		if k != key && strings.HasPrefix(k, a.Name+"@") {
			delete(m.unplacedSince, k)
		}
	}
	m.scaler.forgetWaits(a.Name, key, j.Verdict == verdictDeployed || j.Verdict == verdictFailed)
	if j.UnplacedSince.IsZero() || j.Verdict == verdictDeployed || j.Verdict == verdictFailed {
		delete(m.unplacedSince, key)
	} else {
		m.unplacedSince[key] = j.UnplacedSince
	}
	if j.Verdict == verdictDeployed || j.Verdict == verdictFailed {
		m.timings.Deployed(string(j.Verdict), w.now.Sub(a.rev.Created).Seconds())
	}
	switch j.Verdict {
	case verdictDeployed:
		m.log.Info("revision deployed", "app", a.Name, "revision", a.Revision)
		m.appEvent(eventDeployed, a.Name, a.Revision, "rolled out")
		if err := m.record(ctx, "deployed", a.Name, fmt.Sprintf("revision %d", a.Revision)); err != nil {
			return false, err
		}
		return true, m.db.SetStatus(ctx, a.Name, a.Revision, store.StatusDeployed, "")
	case verdictFailed:
		why := j.Message
		if j.Failing != "" {
			why = m.describeFailure(ctx, w, j.Failing)
		}
		return true, m.fail(ctx, w, a, why)
	case verdictPromoted:
		return true, m.db.SetStatus(ctx, a.Name, a.Revision, statusPromoted, "")
	case verdictCanary:
		return true, m.db.SetStatus(ctx, a.Name, a.Revision, store.StatusCanary, j.Message)
	case verdictMessage:
		// Not a step (no pass is owed), but watchers show the message.
		defer m.progressChanged()
		return false, m.db.SetStatus(ctx, a.Name, a.Revision, a.rev.Status, j.Message)
	}
	return false, nil
}

// fail marks the revision failed and goes back to the stable one.
func (m *Master) fail(ctx context.Context, w *world, a appState, why string) error {
	m.log.Warn("revision failed", "app", a.Name, "revision", a.Revision, "why", firstLine(why))
	m.appEvent(eventDeployFailed, a.Name, a.Revision, firstLine(why))
	if err := m.record(ctx, "deploy failed", a.Name, fmt.Sprintf("revision %d: %s", a.Revision, firstLine(why))); err != nil {
		return err
	}
	if err := m.db.SetStatus(ctx, a.Name, a.Revision, store.StatusFailed, why); err != nil {
		return err
	}
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
	m.revisionEvent(back, "master")
	return nil
}

// describeFailure says what went wrong with a replica (describeReplica),
// with its last log lines, fetched from its node now (before the rollback
// removes it).
func (m *Master) describeFailure(ctx context.Context, w *world, id string) string {
	var r store.Replica
	for _, x := range w.replicas {
		if x.ID == id {
			r = x
		}
	}
	v := w.views[r.Node]
	desc := describeReplica(id, r.Node, v)
	if _, ok := v.containers[id]; !ok && v.refused[id] {
		return desc
	}
	if lines := m.lastLines(ctx, r.Node, id, 15); len(lines) > 0 {
		desc += "\nlast log lines:\n  " + strings.Join(lines, "\n  ")
	}
	return desc
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// countNodes is how many nodes some replicas are on.
func countNodes(rs []store.Replica) int {
	nodes := map[string]bool{}
	for _, r := range rs {
		nodes[r.Node] = true
	}
	return len(nodes)
}
