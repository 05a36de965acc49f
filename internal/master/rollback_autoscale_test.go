package master_test

import (
	"context"
	"testing"
)

// TestRollbackKeepsAutoscaledCount: moat rollback of an autoscaled app
// keeps the count the app has (within the old revision's bounds), as a
// deploy does: a rollback is what an operator runs under load, and the
// autoscaler decides nothing while a revision that is not its own rolls
// out — taking the old revision's start count would cut the app's
// capacity for the whole rollback.
func TestRollbackKeepsAutoscaledCount(t *testing.T) {
	// The autoscaler asleep: the counts are the deploys' and the rollback's.
	e := newEnv(t, 1, "--app-autoscale-interval", "1h", "--app-autoscale-period-only")
	ctx := context.Background()
	r1 := e.deploy(spec("web", 1, "autoscale: {min: 1, max: 4, cpu: 50%}"))
	if p := e.wait("web", r1.Revision); p.Status != "deployed" || p.Ready != 1 {
		t.Fatalf("first deploy: %+v", p)
	}
	// A deploy raising min brings the count to 3.
	r2 := e.deploy(spec("web", 3, "autoscale: {min: 3, max: 4, cpu: 50%}", "env: {COLOUR: blue}"))
	if p := e.wait("web", r2.Revision); p.Status != "deployed" || p.Ready != 3 {
		t.Fatalf("second deploy: %+v", p)
	}
	rb, err := e.m.Client.Rollback(ctx, "web", r1.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if p := e.wait("web", rb.Revision); p.Status != "deployed" || p.Ready != 3 {
		t.Errorf("rollback to revision %d: %+v, want the 3 replicas the app had", r1.Revision, p)
	}
}
