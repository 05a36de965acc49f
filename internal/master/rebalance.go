package master

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/sched"
)

// noteMoving marks a replica leaving a crowded node: the rollout planner
// replaces it like one on a draining node, surge first and health-gated,
// and stops it once its replacement is ready.
const noteMoving = "moving for spread"

// rebalance evens an app's spread one replica at a time, when its nodes
// changed under it (a node came back or joined, a scale-down left some
// doubled up), once the app is settled (spreadRequest). It reports whether
// it marked a replica to move.
func (m *Master) rebalance(ctx context.Context, w *world, a appState, mine []store.Replica) (bool, error) {
	req, settled := spreadRequest(w, a, mine)
	if !settled {
		return false, nil
	}
	// Asked again only when the nodes or the app's replicas changed.
	key := fmt.Sprintf("%d@%d/%v/%s", len(mine), a.Revision, req.Existing, w.nodesKey())
	if m.balanced[a.Name] == key {
		return false, nil
	}
	from := sched.Rebalance(schedNodes(w, m.images.Signers(digest.Digest(a.rev.Image))), req)
	if from == "" {
		m.balanced[a.Name] = key
		return false, nil
	}
	pick := newestOn(mine, from)
	m.log.Info("replica moving for spread", "app", a.Name, "replica", pick.ID, "from", from)
	if err := m.db.NoteReplica(ctx, pick.ID, noteMoving); err != nil {
		return false, fmt.Errorf("mark %s moving: %w", pick.ID, err)
	}
	return true, nil
}
