package master

import (
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
)

func TestDrainHold(t *testing.T) {
	t0 := time.Now()
	w := &world{
		now:   t0,
		nodes: nodes("n1", "n2"),
		views: map[string]view{
			"n1": upView(running("old"), running("new"), ctr("exited", nodeapi.StateExited, "")),
			"n2": downView(ago(time.Second), ago(time.Second)),
		},
		apps: []appState{{App: store.App{Name: "web"}, spec: spec.App{Update: spec.Update{Drain: 10 * time.Second}}}},
		replicas: []store.Replica{stopping("old", "n1", "t1"), rep("new", "n1", "t2"), stopping("exited", "n1", "t1"),
			stopping("away", "n2", "t1")},
	}
	since := map[string]time.Time{"gone": t0.Add(-time.Hour)}
	hold := drainHold(w, since)
	// Only the running replica being stopped on a node in sync drains;
	// a replica no longer stopping is forgotten.
	if len(hold) != 1 || !hold["old"] || len(since) != 1 || !since["old"].Equal(t0) {
		t.Fatalf("hold %v, since %v; want old alone, first seen now", hold, since)
	}
	if p := planFence(w, hold); len(p.Stop) != 1 || p.Stop[0].ID != "exited" || !p.Fencing["n1"]["web"] {
		t.Fatalf("fence while old drains: %+v; want only the exited one stopped, web still fenced on n1", p)
	}
	w.now = t0.Add(9 * time.Second)
	if hold := drainHold(w, since); !hold["old"] {
		t.Fatalf("9s into a 10s drain: %v, want old held", hold)
	}
	w.now = t0.Add(10 * time.Second)
	if hold := drainHold(w, since); hold["old"] {
		t.Fatalf("10s into a 10s drain: %v, want old stopped", hold)
	}
	// An app without a drain is stopped at once.
	w.apps[0].spec.Update.Drain = 0
	if hold := drainHold(w, map[string]time.Time{}); len(hold) != 0 {
		t.Fatalf("no drain: %v", hold)
	}
}
