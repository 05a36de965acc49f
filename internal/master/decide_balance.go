package master

import (
	"cmp"
	"math/rand/v2"
	"slices"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/rollout"
)

// The decision of where a dial goes (moat dial, and what is built on it):
// which replicas of an app take new connections, and in which order to
// try them. Pure but for the random source it is given; nodes.go applies
// it and counts the connections.

// dialTarget is a replica a dial may go to.
type dialTarget struct{ ID, Node string }

// dialPool splits an app's replicas into those that take new connections
// (the pool) and those kept as a last resort. The pool is the replicas
// the master wants running that are ready — running, their health check
// passing — on a node that is up and in sync, and that are not leaving:
// not on a draining node, not moving for spread. A replica whose check
// fails stops being ready, and one being stopped is no longer wanted
// running, so both leave the pool as soon as the master hears of it.
// Leaving replicas that are still ready are the last resort: they are
// replaced surge first or stopped only once replaced, and until then they
// may be all the app has; refusing them would turn a drain into an outage.
func dialPool(w *world, app string) (pool, leaving []dialTarget) {
	for _, r := range w.replicas {
		if r.App != app || r.Desired != store.Run {
			continue
		}
		v, known := w.views[r.Node]
		if state, _ := replicaState(r, v, known); state != rollout.Ready {
			continue
		}
		t := dialTarget{ID: r.ID, Node: r.Node}
		if w.nodes[r.Node].Draining || r.Note == noteMoving {
			leaving = append(leaving, t)
		} else {
			pool = append(pool, t)
		}
	}
	return pool, leaving
}

// balanceOrder is the order to try targets in: fewest open connections
// first, ties in random order, so the next connection goes where the
// fewest are held and each one after a failure to the next least busy.
//
// Least connections rather than power of two choices: the master counts
// every connection it opens, including those still being opened, so its
// counts are exact, and with exact counts least connections keeps held
// connections within one of each other, where two random choices among
// three replicas let the spread drift (a simulation of 30 held
// connections over 3 replicas puts one outside 10±1 in about 2 % of runs).
func balanceOrder(ts []dialTarget, open map[string]int, rnd *rand.Rand) []dialTarget {
	out := slices.Clone(ts)
	rnd.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	slices.SortStableFunc(out, func(a, b dialTarget) int { return cmp.Compare(open[a.ID], open[b.ID]) })
	return out
}
