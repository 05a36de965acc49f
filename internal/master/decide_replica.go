package master

import (
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/rollout"
	"github.com/moatcloud/moat/internal/sshx"
)

// The decisions about one replica: what state it is in, and what its
// node should be asked to do for it. Pure; reconcile.go applies them.

// replicaState is a replica's state for the rollout planner, from what
// its node last reported: unknown while the node is not up and in sync
// (and then no container), pending until its container exists and while
// it is only created, ready when running and healthy (or without a health
// check), starting while its check has not passed yet, and failed
// otherwise (unhealthy, restarting, exited). The container is returned
// when the node reports one.
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

// exitedForGood: an exited container whose restart policy gave up (or
// that was told no) stays down. One the node's fence stopped (a singleton
// whose node lost the master's lease) is started again, whatever its
// policy: it did not end, it was stopped. restart always never gives up;
// on-failure gives up after a clean exit or after its retries, and counts
// failure as the node does: a non-zero code or an error.
func exitedForGood(c nodeapi.Container) bool {
	if c.FenceStopped {
		return false
	}
	switch c.Spec.Restart.Policy {
	case nodeapi.RestartAlways:
		return false
	case nodeapi.RestartOnFailure:
		failed := (c.ExitCode != nil && *c.ExitCode != 0) || c.Error != ""
		return !failed || c.Spec.Restart.MaxRetries > 0
	}
	return true
}

// replicaOp is what converge asks a node to do for a replica.
type replicaOp string

// Operations.
const (
	opNone   replicaOp = ""
	opCreate replicaOp = "create" // its image, then its container
	opStart  replicaOp = "start"  // its exited container, again
)

// convergeOp decides what a replica the master wants running needs from
// its node: its container created when there is none, started again when
// it exited but not for good, nothing otherwise. Nothing is asked of a
// node that is not up and in sync, nor for a replica with an operation
// under way, one the node refused for good (its revision fails on that;
// asking again would only upload the image to be refused again), or of an
// unknown app; and a singleton's copy waits while the fence still stops
// an old copy of its app on that node (fencing, from planFence).
func convergeOp(w *world, r store.Replica, apps map[string]appState, fencing map[string]map[string]bool) replicaOp {
	v, ok := w.views[r.Node]
	if r.Desired != store.Run || !ok || !v.synced || v.inflight[r.ID] || v.refused[r.ID] {
		return opNone
	}
	app, ok := apps[r.App]
	if !ok || (app.spec.Singleton && fencing[r.Node][r.App]) {
		return opNone
	}
	c, exists := v.containers[r.ID]
	switch {
	case !exists:
		return opCreate
	case c.State == nodeapi.StateExited && !exitedForGood(c):
		return opStart
	}
	return opNone
}
