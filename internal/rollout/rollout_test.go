package rollout

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// reps builds replicas from a compact notation: "c:ready" is a current
// replica, "o:starting" an old one, "d:ready" current but draining. IDs
// are r0, r1, ...
func reps(specs ...string) []Replica {
	var out []Replica
	for i, s := range specs {
		r := Replica{ID: fmt.Sprintf("r%d", i)}
		switch s[0] {
		case 'c':
			r.Current = true
		case 'd':
			r.Current, r.Drain = true, true
		}
		r.State = State(s[2:])
		out = append(out, r)
	}
	return out
}

// onNodes puts replicas on nodes, in order.
func onNodes(rs []Replica, nodes ...string) []Replica {
	for i := range rs {
		rs[i].Node = nodes[i]
	}
	return rs
}

func TestPlan(t *testing.T) {
	rolling := func(desired, surge, unavail int, rs []Replica) Input {
		return Input{Desired: desired, Strategy: Rolling, MaxSurge: surge, MaxUnavailable: unavail, Replicas: rs}
	}
	tests := []struct {
		name string
		in   Input
		want Step
	}{
		{"fresh app starts everything", rolling(3, 1, 0, nil), Step{Start: 3, Phase: Progressing}},
		{"fresh app waits for readiness", rolling(2, 1, 0, reps("c:ready", "c:starting")), Step{Phase: Progressing}},
		{"fresh app done", rolling(2, 1, 0, reps("c:ready", "c:ready")), Step{Phase: Done}},
		{"rolling: surge one first", rolling(3, 1, 0, reps("o:ready", "o:ready", "o:ready")), Step{Start: 1, Phase: Progressing}},
		{"rolling: nothing stops before the new one is ready", rolling(3, 1, 0, reps("o:ready", "o:ready", "o:ready", "c:starting")), Step{Phase: Progressing}},
		{"rolling: a ready new one lets an old one go", rolling(3, 1, 0, reps("o:ready", "o:ready", "o:ready", "c:ready")), Step{Stop: []string{"r0"}, Phase: Progressing}},
		{"rolling: terminating replicas do not hold the next one back", Input{Desired: 3, Strategy: Rolling, MaxSurge: 1, Replicas: reps("o:ready", "o:ready", "c:ready"), Terminating: 1}, Step{Start: 1, Phase: Progressing}},
		{"rolling: done only once the terminating are gone", Input{Desired: 1, Strategy: Rolling, MaxSurge: 1, Replicas: reps("c:ready"), Terminating: 1}, Step{Phase: Progressing}},
		{"rolling: after termination the next starts", rolling(3, 1, 0, reps("o:ready", "o:ready", "c:ready")), Step{Start: 1, Phase: Progressing}},
		{"rolling: max unavailable lets old go first", rolling(3, 0, 1, reps("o:ready", "o:ready", "o:ready")), Step{Stop: []string{"r0"}, Phase: Progressing}},
		{"rolling: surge 2 starts two", rolling(4, 2, 0, reps("o:ready", "o:ready", "o:ready", "o:ready")), Step{Start: 2, Phase: Progressing}},
		{"rolling: both zero surges by one", rolling(2, 0, 0, reps("o:ready", "o:ready")), Step{Start: 1, Phase: Progressing}},
		{"rolling: failed old replicas go at once", rolling(2, 1, 0, reps("o:failed", "o:ready")), Step{Start: 1, Stop: []string{"r0"}, Phase: Progressing}},
		{"rolling: last old goes", rolling(2, 1, 0, reps("o:ready", "c:ready", "c:ready")), Step{Stop: []string{"r0"}, Phase: Progressing}},
		{"scale up", rolling(4, 1, 0, reps("c:ready", "c:ready")), Step{Start: 2, Phase: Progressing}},
		{"scale down keeps the oldest", rolling(1, 1, 0, reps("c:ready", "c:ready", "c:ready")), Step{Stop: []string{"r2", "r1"}, Phase: Progressing}},
		{"scale down drops the unready first", rolling(2, 1, 0, reps("c:ready", "c:failed", "c:ready")), Step{Stop: []string{"r1"}, Phase: Progressing}},
		{"scale to zero", rolling(0, 1, 0, reps("c:ready")), Step{Stop: []string{"r0"}, Phase: Progressing}},
		{"scale down leaves the most crowded node first", rolling(3, 1, 0, onNodes(reps("c:ready", "c:ready", "c:ready", "c:ready", "c:ready"), "n1", "n1", "n2", "n3", "n1")),
			Step{Stop: []string{"r4", "r1"}, Phase: Progressing}},
		{"scale down: the unready still go before the crowded", rolling(2, 1, 0, onNodes(reps("c:ready", "c:ready", "c:starting"), "n1", "n1", "n2")),
			Step{Stop: []string{"r2"}, Phase: Progressing}},
		{"zero is done", rolling(0, 1, 0, nil), Step{Phase: Done}},
		{"drain: replaced like an old one", rolling(2, 1, 0, reps("d:ready", "c:ready")), Step{Start: 1, Phase: Progressing}},
		{"drain: goes once the replacement is ready", rolling(2, 1, 0, reps("d:ready", "c:ready", "c:ready")), Step{Stop: []string{"r0"}, Phase: Progressing}},
		{"a node down: its replica is not ready and goes", rolling(2, 1, 0, reps("o:unknown", "c:ready", "c:ready")), Step{Stop: []string{"r0"}, Phase: Progressing}},

		{"canary: starts the canaries beside the old", Input{Desired: 4, Strategy: Canary, Canary: 1, Replicas: reps("o:ready", "o:ready", "o:ready", "o:ready")}, Step{Start: 1, Phase: Progressing}},
		{"canary: waits for promotion", Input{Desired: 4, Strategy: Canary, Canary: 1, Replicas: reps("o:ready", "o:ready", "o:ready", "o:ready", "c:ready")}, Step{Phase: Waiting}},
		{"canary: a first deploy has nothing to compare with", Input{Desired: 3, Strategy: Canary, Canary: 1, Replicas: reps()}, Step{Start: 3, Phase: Progressing}},
		{"canary: a scale of a whole revision keeps every replica", Input{Desired: 3, Strategy: Canary, Canary: 1, Replicas: reps("c:ready", "c:ready")}, Step{Start: 1, Phase: Progressing}},
		{"canary: promoted rolls on", Input{Desired: 2, Strategy: Canary, Canary: 1, Promoted: true, MaxSurge: 1, Replicas: reps("o:ready", "o:ready", "c:ready")}, Step{Stop: []string{"r0"}, Phase: Progressing}},

		{"blue-green: the whole new set starts", Input{Desired: 2, Strategy: BlueGreen, Replicas: reps("o:ready", "o:ready")}, Step{Start: 2, Phase: Progressing}},
		{"blue-green: old stay until all new are ready", Input{Desired: 2, Strategy: BlueGreen, Replicas: reps("o:ready", "o:ready", "c:ready", "c:starting")}, Step{Phase: Progressing}},
		{"blue-green: switch", Input{Desired: 2, Strategy: BlueGreen, Replicas: reps("o:ready", "o:ready", "c:ready", "c:ready")}, Step{Stop: []string{"r0", "r1"}, Phase: Progressing}},

		{"singleton: the old stops first", Input{Desired: 1, Singleton: true, Replicas: reps("o:ready")}, Step{Stop: []string{"r0"}, Phase: Progressing}},
		{"singleton: waits while the old may still run", Input{Desired: 1, Singleton: true, Terminating: 1}, Step{Phase: Progressing}},
		{"singleton: then starts one", Input{Desired: 1, Singleton: true}, Step{Start: 1, Phase: Progressing}},
		{"singleton: never a second", Input{Desired: 1, Singleton: true, Replicas: reps("c:starting")}, Step{Phase: Progressing}},
		{"singleton: an unreachable one blocks", Input{Desired: 1, Singleton: true, Replicas: reps("c:unknown")}, Step{Phase: Progressing}},
		{"singleton: done", Input{Desired: 1, Singleton: true, Replicas: reps("c:ready")}, Step{Phase: Done}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.in)
			if d := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("Plan (-want +got):\n%s", d)
			}
		})
	}
}

// TestRollingConverges drives a whole rolling update, applying each step
// (started replicas become ready on the next round, stopped ones vanish),
// and checks the invariants on the way: never more than desired+surge,
// never fewer ready than desired-unavailable.
func TestRollingConverges(t *testing.T) {
	for _, tc := range []struct{ desired, surge, unavail int }{{3, 1, 0}, {5, 2, 1}, {4, 0, 2}, {1, 1, 0}, {6, 3, 3}} {
		in := Input{Desired: tc.desired, Strategy: Rolling, MaxSurge: tc.surge, MaxUnavailable: tc.unavail}
		for i := range tc.desired {
			in.Replicas = append(in.Replicas, Replica{ID: fmt.Sprintf("old%d", i), State: Ready})
		}
		next := 0
		for round := 0; ; round++ {
			if round > 50 {
				t.Fatalf("%+v: no convergence in 50 rounds: %+v", tc, in.Replicas)
			}
			step := Plan(in)
			if step.Phase == Done {
				break
			}
			// Apply: the previous round's starters are ready now.
			var keep []Replica
			stop := map[string]bool{}
			for _, id := range step.Stop {
				stop[id] = true
			}
			for _, r := range in.Replicas {
				if stop[r.ID] {
					continue
				}
				if r.State == Starting {
					r.State = Ready
				}
				keep = append(keep, r)
			}
			for range step.Start {
				keep = append(keep, Replica{ID: fmt.Sprintf("new%d", next), Current: true, State: Starting})
				next++
			}
			in.Replicas = keep
			ready := count(keep, Ready)
			if len(keep) > tc.desired+max(tc.surge, 1) {
				t.Fatalf("%+v round %d: %d replicas, over desired+surge", tc, round, len(keep))
			}
			if ready < tc.desired-tc.unavail {
				t.Fatalf("%+v round %d: %d ready, under desired-unavailable", tc, round, ready)
			}
		}
		for _, r := range in.Replicas {
			if !r.Current {
				t.Errorf("%+v: old replica %s left", tc, r.ID)
			}
		}
	}
}
