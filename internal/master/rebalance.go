package master

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/rollout"
	"github.com/moatcloud/moat/internal/sched"
)

// noteMoving marks a replica leaving a crowded node: the rollout planner
// replaces it like one on a draining node, surge first and health-gated,
// and stops it once its replacement is ready.
const noteMoving = "moving for spread"

// rebalance evens an app's spread one replica at a time, when its nodes
// changed under it (a node came back or joined, a scale-down left some
// doubled up). It waits until the app is settled: deployed, every replica
// current and ready, none moving, every node up. Never a singleton or an
// app pinned to its volumes, nor one that opted out (rebalance: false).
// It reports whether it marked a replica to move.
func (m *Master) rebalance(ctx context.Context, w *world, a appState, mine []store.Replica) (bool, error) {
	sp := a.spec
	if sp.Singleton || sp.PinnedNode() != "" || !sp.Placement.Spread || sp.Placement.NoRebalance ||
		a.rev.Status != store.StatusDeployed || couldGrow(w) {
		return false, nil
	}
	req := sched.Request{
		App: a.Name, Labels: sp.Placement.Labels, Spread: true,
		Resources: sched.Resources{MilliCPU: sp.Resources.MilliCPU, MemoryBytes: sp.Resources.MemoryBytes},
		Existing:  map[string]int{},
	}
	running := 0
	for _, r := range mine {
		if r.Desired != store.Run {
			return false, nil // something is on its way out
		}
		v, known := w.views[r.Node]
		if state, _ := replicaState(r, v, known); state != rollout.Ready || r.Template != a.rev.Template || r.Note == noteMoving {
			return false, nil
		}
		req.Existing[r.Node]++
		running++
	}
	if running != sp.Replicas {
		return false, nil
	}
	// Asked again only when the nodes or the app's replicas changed.
	key := fmt.Sprintf("%d@%d/%v/%s", running, a.Revision, req.Existing, w.nodesKey())
	if m.balanced[a.Name] == key {
		return false, nil
	}
	from := sched.Rebalance(m.schedNodes(w, m.images.Signers(digest.Digest(a.rev.Image))), req)
	if from == "" {
		m.balanced[a.Name] = key
		return false, nil
	}
	// The newest replica there moves: the longest-running ones stay.
	var pick store.Replica
	for _, r := range mine {
		if r.Node == from && (pick.ID == "" || r.Created.After(pick.Created)) {
			pick = r
		}
	}
	m.log.Info("replica moving for spread", "app", a.Name, "replica", pick.ID, "from", from)
	if err := m.db.NoteReplica(ctx, pick.ID, noteMoving); err != nil {
		return false, fmt.Errorf("mark %s moving: %w", pick.ID, err)
	}
	return true, nil
}
