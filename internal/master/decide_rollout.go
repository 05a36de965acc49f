package master

import (
	"fmt"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/rollout"
)

// The decisions about a revision's rollout: what the planner is told about
// an app, and what becomes of the revision. Pure: they read a snapshot
// and return a value; app.go applies it (database, logs, audit).

// rolloutInput describes an app to the rollout planner, and names a
// current replica that failed, if any. A replica being stopped counts as
// terminating while its container may still run: reported by a reachable
// node, or, for a singleton, on a node that is away and has not surely
// stopped it. A replica on a draining node, or moving for spread, is
// replaced like an old one — and a move for spread never costs a ready
// replica: it surges first. A first deploy that failed leaves nothing
// running.
func rolloutInput(w *world, a appState, mine []store.Replica, ft fenceTimes) (rollout.Input, string) {
	u := a.spec.Update
	in := rollout.Input{
		Desired: a.spec.Replicas, Strategy: u.Strategy, MaxSurge: u.MaxSurge, MaxUnavailable: u.MaxUnavailable,
		Canary: u.Canary, Singleton: a.spec.Singleton,
		// Only a revision still rolling out waits at its canaries; once
		// deployed (or promoted) it is whole, and a later drain or
		// failover must not cut it back to them.
		Promoted: a.rev.Status != store.StatusProgressing && a.rev.Status != store.StatusCanary,
	}
	if a.rev.Status == store.StatusFailed && a.Stable == 0 {
		in.Desired = 0
	}
	var failing string
	for _, r := range mine {
		v, known := w.views[r.Node]
		state, c := replicaState(r, v, known)
		if r.Desired == store.Stop {
			if c != nil || (a.spec.Singleton && state == rollout.Unknown && !surelyStopped(v, w.now, ft)) {
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
			in.MaxSurge, in.MaxUnavailable = max(in.MaxSurge, 1), 0
		}
	}
	return in, failing
}

// verdict is what becomes of a revision still rolling out.
type verdict string

// Verdicts.
const (
	verdictNone     verdict = ""         // nothing to record
	verdictDeployed verdict = "deployed" // every replica current and ready
	verdictFailed   verdict = "failed"   // give up and roll back to the stable revision
	verdictPromoted verdict = "promoted" // canaries healthy, and the app promotes itself
	verdictCanary   verdict = "canary"   // canaries healthy: wait for moat promote
	verdictMessage  verdict = "message"  // still rolling out; why some replicas wait, in Message
)

// judgeInput is what judging a revision looks at.
type judgeInput struct {
	App             string
	Status, Message string // the revision's, as recorded
	Created         time.Time
	Deadline        time.Duration
	AutoPromote     bool          // the spec says promote: auto
	Phase           rollout.Phase // the planner's, this pass
	Failing         string        // a current replica that failed
	Unplaced        string        // why some replicas cannot be placed, this pass
	// UnplacedSince is when the revision's replicas were first found
	// unplaceable, as remembered from earlier passes; zero: they were not.
	UnplacedSince time.Time
	CouldGrow     bool // room may still appear by itself (couldGrow)
	// WaitingForNodes: the cluster autoscaler is getting nodes for the
	// unplaced replicas; the revision waits for them past its deadline
	// (a pool whose creations keep failing opens its breaker, and then
	// nothing waits). WaitedUntil is the last pass it did: the deadline
	// runs again from then, the replicas having had nowhere to go.
	WaitingForNodes bool
	WaitedUntil     time.Time
	Now             time.Time
}

// judgment is the verdict on a revision.
type judgment struct {
	Verdict verdict
	// Message goes with the verdict: why it failed, what promoting
	// takes, why replicas wait. Empty for a failure of Failing.
	Message string
	// Failing is the replica the revision failed for: its description,
	// with its last log lines, is the message.
	Failing string
	// UnplacedSince is the fail-fast clock after this pass, to remember
	// for the next one: zero when it stopped (or never ran).
	UnplacedSince time.Time
}

// failFastAfter is how long replicas must stay unplaceable, with every
// node up, before their revision fails without waiting for its deadline:
// long enough for replicas on their way out to free their room.
const failFastAfter = 2 * time.Second

// judgeRevision decides how a revision's rollout goes, in this order:
// deployed once the planner is done; failed at the first current replica
// that failed, or past its deadline (saying what could not be placed)
// unless new nodes are on their way for it (the deadline then runs from
// the last pass that waited for them);
// failed early when replicas stayed unplaceable for failFastAfter and no
// node that is away could bring room back (waiting out the deadline would
// only make the operator wait); promoted or waiting for promotion when
// its canaries are healthy; otherwise it notes why replicas wait. Only a
// revision still rolling out is judged. The fail-fast clock runs only on
// passes that get as far as asking whether the rollout is stuck.
func judgeRevision(in judgeInput) judgment {
	j := judgment{UnplacedSince: in.UnplacedSince}
	if !inProgress(in.Status) {
		return j
	}
	switch {
	case in.Phase == rollout.Done:
		j.Verdict = verdictDeployed
		return j
	case in.Failing != "":
		j.Verdict, j.Failing = verdictFailed, in.Failing
		return j
	case in.Now.Sub(later(in.Created, in.WaitedUntil)) > in.Deadline && !in.WaitingForNodes:
		j.Verdict, j.Message = verdictFailed, fmt.Sprintf("not healthy within the %s deadline", in.Deadline)
		if in.Unplaced != "" {
			j.Message += ": " + in.Unplaced
		}
		return j
	}
	j.UnplacedSince = unplacedClock(in.Unplaced, in.UnplacedSince, in.Now)
	stuck := !j.UnplacedSince.IsZero() && in.Now.Sub(j.UnplacedSince) >= failFastAfter
	switch {
	case stuck && !in.CouldGrow:
		j.Verdict, j.Message = verdictFailed, in.Unplaced
	case in.Phase == rollout.Waiting && in.AutoPromote:
		j.Verdict = verdictPromoted
	case in.Phase == rollout.Waiting && in.Status != store.StatusCanary:
		j.Verdict, j.Message = verdictCanary, "canaries healthy: moat promote "+in.App+" to go on"
	case in.Unplaced != "" && in.Message != in.Unplaced:
		j.Verdict, j.Message = verdictMessage, in.Unplaced
	}
	return j
}

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// unplacedClock is since when replicas have been unplaceable: since now
// when they just became so, zero when they can all be placed.
func unplacedClock(unplaced string, since, now time.Time) time.Time {
	switch {
	case unplaced == "":
		return time.Time{}
	case since.IsZero():
		return now
	}
	return since
}

// describeReplica says what went wrong with a replica, as its node last
// reported it: refused (the node will not run its image), or its state
// with its health check's complaint or its exit code, and its restarts.
func describeReplica(id, node string, v view) string {
	c, ok := v.containers[id]
	var b strings.Builder
	if !ok && v.refused[id] {
		fmt.Fprintf(&b, "replica %s on %s: refused: %s", id, node, v.lastErr[id])
		return b.String()
	}
	fmt.Fprintf(&b, "replica %s on %s: %s", id, node, c.State)
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
	return b.String()
}
