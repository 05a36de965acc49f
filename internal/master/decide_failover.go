package master

import (
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/sshx"
)

// The decisions about nodes that are away and containers that should not
// run: which replicas move, when a singleton may start elsewhere, which
// containers the fence stops. Pure; reconcile.go and app.go apply them.

// fenceTimes are the timings that fence singletons: how long a node must
// be away before its singletons move (Config.SingletonGrace), and how long
// a node runs them without hearing from the master (Config.LeaseTTL).
type fenceTimes struct {
	Grace    time.Duration
	LeaseTTL time.Duration
}

// surelyStopped says whether a node that is away has certainly stopped its
// fenced containers: it has been down for the singleton grace, and its
// lease from the master has run out (with a second to spare for clocks).
// Until then a singleton there may still run, and a second copy must not
// start.
func surelyStopped(v view, now time.Time, ft fenceTimes) bool {
	return v.state == sshx.Down && now.Sub(v.since) >= ft.Grace &&
		now.After(v.leased.Add(ft.LeaseTTL+time.Second))
}

// failoverStops picks the replicas of an app to stop because their node
// is down, so that the planner replaces them elsewhere: those the master
// wants running on a node it watches that is down (not one still
// connecting). A pinned app (volumes) never moves: its data stays on its
// node. A singleton moves only once its node surely stopped it. Any
// replica wanted on a node no longer enrolled stops, whatever its app: a
// pass that looked before the node was removed (moat node rm, a pool
// retiring it) placed it after the removal deleted the node's replicas,
// as removal would have; left, nothing runs it and it holds the app's
// rollout or a drain back for ever.
func failoverStops(w *world, a appState, mine []store.Replica, ft fenceTimes) []store.Replica {
	var out []store.Replica
	for _, r := range mine {
		if _, enrolled := w.nodes[r.Node]; r.Desired == store.Run && !enrolled {
			out = append(out, r)
		}
	}
	if a.spec.PinnedNode() != "" {
		return out
	}
	for _, r := range mine {
		if _, enrolled := w.nodes[r.Node]; !enrolled {
			continue
		}
		v, ok := w.views[r.Node]
		if r.Desired != store.Run || !ok || v.state != sshx.Down {
			continue
		}
		if a.spec.Singleton && !surelyStopped(v, w.now, ft) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// containerRef names a container on a node.
type containerRef struct{ Node, ID string }

// fencePlan is what the fence does on reachable nodes.
type fencePlan struct {
	// Stop: containers of moat replicas the master does not want on that
	// node (replaced while the node was away, scaled down, removed).
	Stop []containerRef
	// Fencing: per node, the apps with such containers still there.
	Fencing map[string]map[string]bool
	// Forget: stopped replicas whose containers are gone (the node is in
	// sync and reports none), or whose node is no longer enrolled.
	Forget []string
}

// planFence decides what the fence stops and forgets. Only nodes in sync
// are looked at: an unsynced view may lack containers that still run.
// Containers not made for a replica (no moat.replica label) are not
// moat's to stop, nor are replicas still draining (hold: out of every
// pool, finishing what they were sent; drainHold). Stop lists containers
// in no particular order.
func planFence(w *world, hold map[string]bool) fencePlan {
	wanted := map[string]string{} // replica ID → node, desired run
	for _, r := range w.replicas {
		if r.Desired == store.Run {
			wanted[r.ID] = r.Node
		}
	}
	p := fencePlan{Fencing: map[string]map[string]bool{}}
	for name, v := range w.views {
		if !v.synced {
			continue
		}
		for id, c := range v.containers {
			if c.Spec.Labels["moat.replica"] == "" || wanted[id] == name {
				continue
			}
			if p.Fencing[name] == nil {
				p.Fencing[name] = map[string]bool{}
			}
			p.Fencing[name][c.Spec.Labels["moat.app"]] = true
			if !hold[id] {
				p.Stop = append(p.Stop, containerRef{Node: name, ID: id})
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
			p.Forget = append(p.Forget, r.ID)
		}
	}
	return p
}
