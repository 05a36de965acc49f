package master

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/rollout"
	"github.com/moatcloud/moat/internal/sched"
)

// The decisions the scheduler is asked with: which nodes it sees and how,
// what a placement or a move for spread asks for, and whether a node
// accepts an image. Pure; app.go, rebalance.go and agent.go apply them.

// accepts says whether a node runs an image signed by these keys, as far
// as the master can tell from what the node reported (the node decides):
// any image when it does not require signatures, else one signed by a
// key it trusts. The node reports each trusted signer as "principals
// fingerprint"; imageSigners are fingerprints.
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

// acceptProblem refuses an image no node would run for want of a
// signature it trusts, saying which keys the nodes trust and how to sign
// it. With no nodes yet, nothing is refused.
func acceptProblem(nodes []store.Node, img image.Image) error {
	if len(nodes) == 0 {
		return nil
	}
	trusted := map[string]bool{}
	for _, n := range nodes {
		if accepts(nodeInfo(n.Info), img.Signers) {
			return nil
		}
		for _, s := range n.Info.Signers {
			trusted[s] = true
		}
	}
	ref := img.Name
	if ref == "" {
		ref = string(img.Digest)
	}
	what := "is not signed"
	if len(img.Signers) > 0 {
		what = "is signed only by " + strings.Join(img.Signers, ", ")
	}
	names := slices.Sorted(maps.Keys(trusted))
	return fmt.Errorf("image %s %s, and every node runs only images signed by a key it trusts (%s): sign it with moat image sign %s --key KEY: %w",
		ref, what, strings.Join(names, "; "), ref, errs.ErrInvalid)
}

// placementChanged says whether two descriptions of a node differ in what
// placing replicas depends on: capacity and which images it accepts.
// (Disk use changes after every pull and does not count.)
func placementChanged(a, b nodeapi.NodeInfo) bool {
	return a.CPUs != b.CPUs || a.MemoryBytes != b.MemoryBytes || a.RequireSigned != b.RequireSigned || !slices.Equal(a.Signers, b.Signers)
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

// schedNodes is the scheduler's view of the nodes: capacity from what
// each node reported, allocation from the replicas the master placed
// there, cordoned when cordoned or draining, down when not watched or not
// in sync, and whether it accepts an image signed by imageSigners.
func schedNodes(w *world, imageSigners []string) []sched.Node {
	alloc := w.allocated()
	var out []sched.Node
	for name, n := range w.nodes {
		v, ok := w.views[name]
		out = append(out, sched.Node{
			Name: name, Labels: n.Labels, Allocated: alloc[name],
			Capacity:     sched.Resources{MilliCPU: int64(n.Info.CPUs) * 1000, MemoryBytes: n.Info.MemoryBytes},
			Cordoned:     n.Cordoned || n.Draining,
			Down:         !ok || !v.synced,
			RefusesImage: !accepts(nodeInfo(n.Info), imageSigners),
			Tenant:       n.Tenant, Shared: n.Shared,
		})
	}
	return out
}

// placeRequest asks the scheduler for n replicas of the app's target
// revision. Spread counts replicas of the target template only: the old
// ones are leaving, and counting them would pile the new ones onto
// whichever node happened to lose its old replica first.
func placeRequest(a appState, mine []store.Replica, n int) sched.Request {
	req := sched.Request{
		App: a.Name, Tenant: keyTenant(a.Name), Count: n, Labels: a.spec.Placement.Labels, Spread: a.spec.Placement.Spread, Pinned: a.spec.PinnedNode(),
		Resources: sched.Resources{MilliCPU: a.spec.Resources.MilliCPU, MemoryBytes: a.spec.Resources.MemoryBytes},
		Existing:  map[string]int{},
	}
	for _, r := range mine {
		if r.Desired == store.Run && r.Template == a.rev.Template {
			req.Existing[r.Node]++
		}
	}
	return req
}

// spreadRequest decides whether an app may have its spread evened out
// now, and if so what to ask the scheduler. Never a singleton, an app
// pinned to its volumes, one that does not spread or opted out
// (rebalance: false). Only a settled app: deployed, every node up and in
// sync, every replica wanted, current, ready and not already moving, and
// as many as the spec asks for.
func spreadRequest(w *world, a appState, mine []store.Replica) (sched.Request, bool) {
	sp := a.spec
	if sp.Singleton || sp.PinnedNode() != "" || !sp.Placement.Spread || sp.Placement.NoRebalance ||
		a.rev.Status != store.StatusDeployed || couldGrow(w) {
		return sched.Request{}, false
	}
	req := sched.Request{
		App: a.Name, Tenant: keyTenant(a.Name), Labels: sp.Placement.Labels, Spread: true,
		Resources: sched.Resources{MilliCPU: sp.Resources.MilliCPU, MemoryBytes: sp.Resources.MemoryBytes},
		Existing:  map[string]int{},
	}
	for _, r := range mine {
		if r.Desired != store.Run {
			return sched.Request{}, false // something is on its way out
		}
		v, known := w.views[r.Node]
		if state, _ := replicaState(r, v, known); state != rollout.Ready || r.Template != a.rev.Template || r.Note == noteMoving {
			return sched.Request{}, false
		}
		req.Existing[r.Node]++
	}
	if len(mine) != sp.Replicas {
		return sched.Request{}, false
	}
	return req, true
}

// newestOn picks the replica to move off a node for spread: the newest
// there, so the longest-running ones stay.
func newestOn(mine []store.Replica, node string) store.Replica {
	var pick store.Replica
	for _, r := range mine {
		if r.Node == node && (pick.ID == "" || r.Created.After(pick.Created)) {
			pick = r
		}
	}
	return pick
}
