package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

// TestPrintAutoscaler: moat autoscaler status names every decision, taken
// or not, with its reason.
func TestPrintAutoscaler(t *testing.T) {
	now := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	st := masterapi.AutoscalerStatus{
		ScaleUp: &masterapi.ScaleUpDecision{Time: now.Add(-5 * time.Second), Took: 2 * time.Millisecond,
			Unplaced: []masterapi.UnplacedApp{
				{App: "web", Replicas: 3, Waiting: "waiting for 2 new nodes in pool p1"},
				{App: "big", Replicas: 1, Unhelped: "pool p1: type local-2 too small for app big (needs 4 cpu, has 2 cpu, 2 GiB)"},
			},
			Pools: []masterapi.PoolDecision{{Pool: "p1", Add: 2, Reason: "3 replicas of web fit on no node; 2 × local-2"}, {Pool: "gpu", Reason: "max reached (4 of 4)"}},
			Reuse: []string{"p1-x"}},
		ScaleDown: &masterapi.ScaleDownDecision{Time: now.Add(-2 * time.Second), Pending: "replicas of web wait for room",
			Nodes: []masterapi.NodeDecision{{Node: "p1-a", Pool: "p1", Reason: "idle, kept: replicas of web wait for room"}, {Node: "p1-b", Pool: "p1", Retire: true, Reason: "idle 11m (after 10m)"}}},
		Actions: []masterapi.AutoscalerAction{{Time: now.Add(-5 * time.Second), Kind: masterapi.ActionGrow, Pool: "p1", Count: 2, Reason: "3 replicas of web fit on no node", Error: "breaker open"}},
		Apps:    []masterapi.AppAutoscale{{App: "api", Min: 2, Max: 20, Current: 4, Desired: 6, Decided: now.Add(-time.Second), Reason: "cpu 91% of 70%"}},
	}
	var out bytes.Buffer
	if err := printAutoscaler(&out, st, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"waiting for 2 new nodes in pool p1", "nothing: pool p1: type local-2 too small for app big",
		"max reached (4 of 4)", "draining node p1-x taken back",
		"nothing retired while replicas of web wait for room", "idle 11m (after 10m)", "yes",
		"grow", "(failed: breaker open)", "cpu 91% of 70%",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	printAutoscaler(&out, masterapi.AutoscalerStatus{}, now)
	if !strings.Contains(out.String(), "no replica has waited for room") {
		t.Errorf("empty status:\n%s", out.String())
	}
	out.Reset()
	printAutoscaler(&out, masterapi.AutoscalerStatus{ScaleUp: &masterapi.ScaleUpDecision{Time: now.Add(-3 * time.Second)}}, now)
	if !strings.Contains(out.String(), "scale-up, 3s: every replica placed, none waits for room") {
		t.Errorf("status once the replicas that waited are placed:\n%s", out.String())
	}
}
