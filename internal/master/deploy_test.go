package master_test

import (
	"context"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

func TestDeployScaleRollback(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	r1 := e.deploy(spec("web", 3))
	if p := e.wait("web", r1.Revision); p.Status != "deployed" || p.Ready != 3 {
		t.Fatalf("first deploy: %+v", p)
	}
	n, nodes := ready(e.replicas("web"))
	if n != 3 || len(nodes) != 3 {
		t.Fatalf("3 replicas should be ready on 3 nodes: %d on %v", n, nodes)
	}
	first := e.replicas("web")

	// Scale: a revision with the same template restarts nothing.
	s, err := e.m.Client.Scale(ctx, "web", 4)
	if err != nil {
		t.Fatal(err)
	}
	if p := e.wait("web", s.Revision); p.Status != "deployed" || p.Ready != 4 {
		t.Fatalf("scale: %+v", p)
	}
	kept := map[string]bool{}
	for _, r := range e.replicas("web") {
		kept[r.ID] = true
	}
	for _, r := range first {
		if !kept[r.ID] {
			t.Errorf("scaling replaced replica %s", r.ID)
		}
	}

	// A new image config: a rolling update replaces every replica.
	r3 := e.deploy(spec("web", 4, "env: {COLOUR: blue}"))
	if p := e.wait("web", r3.Revision); p.Status != "deployed" || p.Ready != 4 || p.Old != 0 {
		t.Fatalf("update: %+v", p)
	}
	for _, r := range e.replicas("web") {
		if kept[r.ID] {
			t.Errorf("replica %s of the old template survived the update", r.ID)
		}
	}

	// Rollback: back to revision 2's template (a new revision).
	rb, err := e.m.Client.Rollback(ctx, "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if p := e.wait("web", rb.Revision); p.Status != "deployed" || p.Ready != 4 {
		t.Fatalf("rollback: %+v", p)
	}
	revs, _ := e.m.Client.Revisions(ctx, "web")
	if len(revs) != 4 || revs[3].Cause != "rollback to 2" {
		t.Errorf("history: %+v", revs)
	}

	// Remove: every replica goes.
	if err := e.m.Client.RemoveApp(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	e.waitReplicas("web", "replicas of a removed app gone", 20*time.Second, func(r []masterapi.Replica) bool { return len(r) == 0 })
}
