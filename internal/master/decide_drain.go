package master

import (
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// drainHold says which replicas being stopped still drain: the master
// stopped wanting them (replaced, scaled away, moved), so they left every
// pool — links' and the edges' tables, moat dial — at once, but they keep
// running for their app's update.drain, counted from when the master
// first saw them so, so that requests already sent to them finish rather
// than fail. since keeps those first sightings between passes; replicas
// no longer draining are dropped from it. Only containers running on a
// node in sync are held: anything else cannot be stopped now anyway.
func drainHold(w *world, since map[string]time.Time) map[string]bool {
	drain := map[string]time.Duration{}
	for _, a := range w.apps {
		drain[a.Name] = a.spec.Update.Drain
	}
	hold := map[string]bool{}
	seen := map[string]bool{}
	for _, r := range w.replicas {
		d := drain[r.App]
		if r.Desired != store.Stop || d <= 0 {
			continue
		}
		v, known := w.views[r.Node]
		c, present := v.containers[r.ID]
		if !known || !v.synced || !present || c.State != nodeapi.StateRunning {
			continue
		}
		seen[r.ID] = true
		first, ok := since[r.ID]
		if !ok {
			first = w.now
			since[r.ID] = first
		}
		if w.now.Sub(first) < d {
			hold[r.ID] = true
		}
	}
	for id := range since {
		if !seen[id] {
			delete(since, id)
		}
	}
	return hold
}
