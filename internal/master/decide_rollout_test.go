package master

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/rollout"
	"github.com/moatcloud/moat/internal/spec"
)

func TestJudgeRevision(t *testing.T) {
	const unplaced = "1 replicas cannot be placed: no node has room"
	// judging is a revision still rolling out, created 10 s ago with a
	// one-minute deadline, whose planner is not done: f changes it.
	judging := func(f func(*judgeInput)) judgeInput {
		in := judgeInput{App: "web", Status: store.StatusProgressing, Created: ago(10 * time.Second),
			Deadline: time.Minute, Phase: rollout.Progressing, Now: t0}
		f(&in)
		return in
	}
	tests := []struct {
		name string
		in   judgeInput
		want judgment
	}{
		{"still progressing: nothing to record", judging(func(in *judgeInput) {}), judgment{}},
		{"deployed is not judged again", judging(func(in *judgeInput) { in.Status, in.Phase = store.StatusDeployed, rollout.Done }), judgment{}},
		{"failed is not judged again", judging(func(in *judgeInput) { in.Status, in.Failing = store.StatusFailed, "r1" }), judgment{}},
		{"superseded is not judged", judging(func(in *judgeInput) {
			in.Status, in.Created = store.StatusSuperseded, ago(time.Hour)
		}), judgment{}},
		{"not judged: the fail-fast clock is left as it was", judging(func(in *judgeInput) {
			in.Status, in.Unplaced, in.UnplacedSince = store.StatusDeployed, unplaced, ago(time.Minute)
		}), judgment{UnplacedSince: ago(time.Minute)}},

		{"done: deployed", judging(func(in *judgeInput) { in.Phase = rollout.Done }), judgment{Verdict: verdictDeployed}},
		{"done as canary: deployed", judging(func(in *judgeInput) { in.Status, in.Phase = store.StatusCanary, rollout.Done }), judgment{Verdict: verdictDeployed}},
		{"done once promoted: deployed", judging(func(in *judgeInput) { in.Status, in.Phase = statusPromoted, rollout.Done }), judgment{Verdict: verdictDeployed}},
		{"done comes before a failing replica", judging(func(in *judgeInput) { in.Phase, in.Failing = rollout.Done, "r1" }), judgment{Verdict: verdictDeployed}},

		{"a failing replica fails it", judging(func(in *judgeInput) { in.Failing = "r1" }), judgment{Verdict: verdictFailed, Failing: "r1"}},
		{"a failing replica says more than the deadline", judging(func(in *judgeInput) {
			in.Failing, in.Created = "r1", ago(time.Hour)
		}), judgment{Verdict: verdictFailed, Failing: "r1"}},

		{"deadline not reached", judging(func(in *judgeInput) { in.Created = ago(59 * time.Second) }), judgment{}},
		{"deadline reached exactly: not yet", judging(func(in *judgeInput) { in.Created = ago(time.Minute) }), judgment{}},
		{"deadline just passed", judging(func(in *judgeInput) { in.Created = ago(time.Minute + time.Nanosecond) }),
			judgment{Verdict: verdictFailed, Message: "not healthy within the 1m0s deadline"}},
		{"deadline passed: says what could not be placed", judging(func(in *judgeInput) {
			in.Created, in.Unplaced = ago(2*time.Minute), unplaced
		}), judgment{Verdict: verdictFailed, Message: "not healthy within the 1m0s deadline: " + unplaced}},
		{"deadline passed: the fail-fast clock does not start", judging(func(in *judgeInput) {
			in.Created, in.Unplaced, in.CouldGrow = ago(2*time.Minute), unplaced, true
		}), judgment{Verdict: verdictFailed, Message: "not healthy within the 1m0s deadline: " + unplaced}},

		{"unplaced first seen: the clock starts and the message says why", judging(func(in *judgeInput) { in.Unplaced = unplaced }),
			judgment{Verdict: verdictMessage, Message: unplaced, UnplacedSince: t0}},
		{"unplaced, already said: the clock starts, nothing to record", judging(func(in *judgeInput) {
			in.Unplaced, in.Message = unplaced, unplaced
		}), judgment{UnplacedSince: t0}},
		{"unplaced 1.9 s, every node up: waits", judging(func(in *judgeInput) {
			in.Unplaced, in.Message, in.UnplacedSince = unplaced, unplaced, ago(1900*time.Millisecond)
		}), judgment{UnplacedSince: ago(1900 * time.Millisecond)}},
		{"unplaced 2 s, every node up: fails fast", judging(func(in *judgeInput) {
			in.Unplaced, in.Message, in.UnplacedSince = unplaced, unplaced, ago(failFastAfter)
		}), judgment{Verdict: verdictFailed, Message: unplaced, UnplacedSince: ago(failFastAfter)}},
		{"unplaced 30 s, a node down: no fail fast, it may bring room back", judging(func(in *judgeInput) {
			in.Unplaced, in.Message, in.UnplacedSince, in.CouldGrow = unplaced, unplaced, ago(30*time.Second), true
		}), judgment{UnplacedSince: ago(30 * time.Second)}},
		{"unplaced, a node down, message differs: notes it", judging(func(in *judgeInput) {
			in.Unplaced, in.UnplacedSince, in.CouldGrow = unplaced, ago(30*time.Second), true
		}), judgment{Verdict: verdictMessage, Message: unplaced, UnplacedSince: ago(30 * time.Second)}},
		{"waiting for new nodes: no fail fast, the message says what for", judging(func(in *judgeInput) {
			in.Unplaced, in.UnplacedSince, in.CouldGrow, in.WaitingForNodes = unplaced+": waiting for 2 new nodes in pool p1", ago(30*time.Second), true, true
		}), judgment{Verdict: verdictMessage, Message: unplaced + ": waiting for 2 new nodes in pool p1", UnplacedSince: ago(30 * time.Second)}},
		{"waiting for new nodes: past the deadline it still waits", judging(func(in *judgeInput) {
			in.Created, in.Unplaced, in.Message, in.UnplacedSince, in.CouldGrow, in.WaitingForNodes = ago(2*time.Minute), unplaced, unplaced, ago(time.Minute), true, true
		}), judgment{UnplacedSince: ago(time.Minute)}},
		{"the nodes came after the deadline: it runs again from the last wait", judging(func(in *judgeInput) {
			in.Created, in.WaitedUntil = ago(2*time.Minute), ago(59*time.Second)
		}), judgment{}},
		{"the nodes came after the deadline: a deadline after the last wait fails it", judging(func(in *judgeInput) {
			in.Created, in.WaitedUntil = ago(3*time.Minute), ago(time.Minute+time.Nanosecond)
		}), judgment{Verdict: verdictFailed, Message: "not healthy within the 1m0s deadline"}},
		{"waiting for new nodes, a replica failing: fails", judging(func(in *judgeInput) {
			in.Unplaced, in.Failing, in.CouldGrow, in.WaitingForNodes = unplaced, "r1", true, true
		}), judgment{Verdict: verdictFailed, Failing: "r1"}},
		{"placed again: the clock stops", judging(func(in *judgeInput) { in.UnplacedSince = ago(time.Second) }), judgment{}},
		{"placed again: an old message stays (nothing clears it)", judging(func(in *judgeInput) {
			in.Message, in.UnplacedSince = unplaced, ago(time.Second)
		}), judgment{}},

		{"canaries healthy, promote manual: waits, saying how to go on", judging(func(in *judgeInput) { in.Phase = rollout.Waiting }),
			judgment{Verdict: verdictCanary, Message: "canaries healthy: moat promote web to go on"}},
		{"canaries healthy, already waiting: nothing", judging(func(in *judgeInput) {
			in.Status, in.Phase = store.StatusCanary, rollout.Waiting
		}), judgment{}},
		{"canaries healthy, promote auto: promoted", judging(func(in *judgeInput) { in.Phase, in.AutoPromote = rollout.Waiting, true }),
			judgment{Verdict: verdictPromoted}},
		{"canaries healthy, promote auto, status canary: promoted", judging(func(in *judgeInput) {
			in.Status, in.Phase, in.AutoPromote = store.StatusCanary, rollout.Waiting, true
		}), judgment{Verdict: verdictPromoted}},
		{"promoted, rolling on: nothing", judging(func(in *judgeInput) { in.Status = statusPromoted }), judgment{}},
		{"canaries waiting, replicas unplaced: the canary verdict first, the clock starts", judging(func(in *judgeInput) {
			in.Phase, in.Unplaced = rollout.Waiting, unplaced
		}), judgment{Verdict: verdictCanary, Message: "canaries healthy: moat promote web to go on", UnplacedSince: t0}},
		{"canaries waiting but stuck with every node up: fails fast", judging(func(in *judgeInput) {
			in.Phase, in.Unplaced, in.UnplacedSince = rollout.Waiting, unplaced, ago(time.Minute)
		}), judgment{Verdict: verdictFailed, Message: unplaced, UnplacedSince: ago(time.Minute)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judgeRevision(tt.in)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("judgeRevision (-want +got):\n%s", d)
			}
		})
	}
}

// TestFailFastTimeline drives the fail-fast clock through the passes of a
// rollout whose replicas cannot be placed, as judge remembers it.
func TestFailFastTimeline(t *testing.T) {
	const unplaced = "2 replicas cannot be placed"
	var since time.Time
	var verdicts []verdict
	for _, pass := range []struct {
		at        time.Duration // after t0
		unplaced  string
		couldGrow bool
	}{
		{0, unplaced, false},                 // clock starts
		{time.Second, unplaced, false},       // waits
		{1500 * time.Millisecond, "", false}, // placed after all: clock stops
		{2 * time.Second, unplaced, false},   // starts again
		{3 * time.Second, unplaced, true},    // a node went away: no fail fast
		{4 * time.Second, unplaced, false},   // back, and 2 s since it started
	} {
		j := judgeRevision(judgeInput{App: "web", Status: store.StatusProgressing, Message: unplaced, Created: t0,
			Deadline: time.Minute, Phase: rollout.Progressing, Unplaced: pass.unplaced, UnplacedSince: since,
			CouldGrow: pass.couldGrow, Now: t0.Add(pass.at)})
		since = j.UnplacedSince
		verdicts = append(verdicts, j.Verdict)
	}
	want := []verdict{verdictNone, verdictNone, verdictNone, verdictNone, verdictNone, verdictFailed}
	if d := cmp.Diff(want, verdicts); d != "" {
		t.Errorf("verdicts pass by pass (-want +got):\n%s", d)
	}
	if want := t0.Add(2 * time.Second); !since.Equal(want) {
		t.Errorf("clock started at %v, want %v", since, want)
	}
}

func TestRolloutInput(t *testing.T) {
	ft := fenceTimes{Grace: 45 * time.Second, LeaseTTL: 30 * time.Second}
	rolling := spec.App{Replicas: 3, Update: spec.Update{Strategy: rollout.Rolling, MaxSurge: 1, MaxUnavailable: 0}}
	singleton := spec.App{Replicas: 1, Singleton: true, Update: spec.Update{Strategy: rollout.Rolling}}
	base := func(replicas ...rollout.Replica) rollout.Input {
		return rollout.Input{Desired: 3, Strategy: rollout.Rolling, MaxSurge: 1, Replicas: replicas}
	}
	exited := ctr("r1", nodeapi.StateExited, "")
	exited.ExitCode = exit(1)
	refusing := upView()
	refusing.refused = map[string]bool{"r1": true}
	moving := rep("r1", "n1", "t2")
	moving.Note = noteMoving

	tests := []struct {
		name        string
		app         appState
		nodes       map[string]store.Node
		views       map[string]view
		mine        []store.Replica
		want        rollout.Input
		wantFailing string
	}{
		{"current and old replicas, in their nodes' states",
			webApp(rolling, store.StatusProgressing), nodes("n1", "n2"),
			map[string]view{"n1": upView(running("r1")), "n2": upView(ctr("r2", nodeapi.StateRunning, nodeapi.HealthStarting))},
			[]store.Replica{rep("r1", "n1", "t2"), rep("r2", "n2", "t1")},
			base(rollout.Replica{ID: "r1", Node: "n1", Current: true, State: rollout.Ready}, rollout.Replica{ID: "r2", Node: "n2", State: rollout.Starting}), ""},
		{"a replica on a node not watched is unknown",
			webApp(rolling, store.StatusProgressing), nodes("n1"), nil,
			[]store.Replica{rep("r1", "n1", "t2")},
			base(rollout.Replica{ID: "r1", Node: "n1", Current: true, State: rollout.Unknown}), ""},
		{"deployed: whole, not cut back to canaries",
			webApp(rolling, store.StatusDeployed), nil, nil, nil,
			rollout.Input{Desired: 3, Strategy: rollout.Rolling, MaxSurge: 1, Promoted: true}, ""},
		{"canary: still waiting at its canaries",
			webApp(rolling, store.StatusCanary), nil, nil, nil, base(), ""},
		{"promoted: goes on",
			webApp(rolling, statusPromoted), nil, nil, nil,
			rollout.Input{Desired: 3, Strategy: rollout.Rolling, MaxSurge: 1, Promoted: true}, ""},
		{"a failed first deploy leaves nothing running",
			func() appState { a := webApp(rolling, store.StatusFailed); a.Stable = 0; return a }(), nil, nil, nil,
			rollout.Input{Strategy: rollout.Rolling, MaxSurge: 1, Promoted: true}, ""},
		{"a failed deploy with a stable revision keeps the count (the rollback replaces it)",
			webApp(rolling, store.StatusFailed), nil, nil, nil,
			rollout.Input{Desired: 3, Strategy: rollout.Rolling, MaxSurge: 1, Promoted: true}, ""},
		{"a failed current replica is failing",
			webApp(rolling, store.StatusProgressing), nodes("n1"), map[string]view{"n1": upView(exited)},
			[]store.Replica{rep("r1", "n1", "t2")},
			base(rollout.Replica{ID: "r1", Node: "n1", Current: true, State: rollout.Failed}), "r1"},
		{"a failed old replica is not failing the revision",
			webApp(rolling, store.StatusProgressing), nodes("n1"), map[string]view{"n1": upView(exited)},
			[]store.Replica{rep("r1", "n1", "t1")},
			base(rollout.Replica{ID: "r1", Node: "n1", State: rollout.Failed}), ""},
		{"the first failed replica is named",
			webApp(rolling, store.StatusProgressing), nodes("n1"),
			map[string]view{"n1": upView(ctr("r1", nodeapi.StateRunning, nodeapi.HealthUnhealthy), ctr("r2", nodeapi.StateExited, ""))},
			[]store.Replica{rep("r1", "n1", "t2"), rep("r2", "n1", "t2")},
			base(rollout.Replica{ID: "r1", Node: "n1", Current: true, State: rollout.Failed}, rollout.Replica{ID: "r2", Node: "n1", Current: true, State: rollout.Failed}), "r1"},
		{"a replica its node refused is failing",
			webApp(rolling, store.StatusProgressing), nodes("n1"), map[string]view{"n1": refusing},
			[]store.Replica{rep("r1", "n1", "t2")},
			base(rollout.Replica{ID: "r1", Node: "n1", Current: true, State: rollout.Pending}), "r1"},
		{"a stopping replica whose container runs is terminating",
			webApp(rolling, store.StatusProgressing), nodes("n1"), map[string]view{"n1": upView(running("r1"))},
			[]store.Replica{stopping("r1", "n1", "t1")},
			rollout.Input{Desired: 3, Strategy: rollout.Rolling, MaxSurge: 1, Terminating: 1}, ""},
		{"a stopping replica whose container is gone is not",
			webApp(rolling, store.StatusProgressing), nodes("n1"), map[string]view{"n1": upView()},
			[]store.Replica{stopping("r1", "n1", "t1")}, base(), ""},
		{"a stopping replica on a node away is not (it is not a singleton)",
			webApp(rolling, store.StatusProgressing), nodes("n1"), map[string]view{"n1": downView(ago(time.Second), ago(time.Second))},
			[]store.Replica{stopping("r1", "n1", "t1")}, base(), ""},
		{"a stopping singleton on a node away, maybe still running: terminating",
			webApp(singleton, store.StatusProgressing), nodes("n1"), map[string]view{"n1": downView(ago(10*time.Second), ago(10*time.Second))},
			[]store.Replica{stopping("r1", "n1", "t1")},
			rollout.Input{Desired: 1, Strategy: rollout.Rolling, Singleton: true, Terminating: 1}, ""},
		{"a stopping singleton on a node that surely stopped it: gone",
			webApp(singleton, store.StatusProgressing), nodes("n1"), map[string]view{"n1": downView(ago(time.Minute), ago(time.Minute))},
			[]store.Replica{stopping("r1", "n1", "t1")},
			rollout.Input{Desired: 1, Strategy: rollout.Rolling, Singleton: true}, ""},
		{"a stopping singleton on a node not watched: terminating (never surely stopped)",
			webApp(singleton, store.StatusProgressing), nodes("n1"), nil,
			[]store.Replica{stopping("r1", "n1", "t1")},
			rollout.Input{Desired: 1, Strategy: rollout.Rolling, Singleton: true, Terminating: 1}, ""},
		{"a replica on a draining node drains",
			webApp(rolling, store.StatusDeployed),
			map[string]store.Node{"n1": {Draining: true}}, map[string]view{"n1": upView(running("r1"))},
			[]store.Replica{rep("r1", "n1", "t2")},
			rollout.Input{Desired: 3, Strategy: rollout.Rolling, MaxSurge: 1, Promoted: true,
				Replicas: []rollout.Replica{{ID: "r1", Node: "n1", Current: true, Drain: true, State: rollout.Ready}}}, ""},
		{"a replica moving for spread drains, surge first",
			webApp(spec.App{Replicas: 3, Update: spec.Update{Strategy: rollout.Rolling, MaxUnavailable: 1}}, store.StatusDeployed),
			nodes("n1"), map[string]view{"n1": upView(running("r1"))},
			[]store.Replica{moving},
			rollout.Input{Desired: 3, Strategy: rollout.Rolling, MaxSurge: 1, MaxUnavailable: 0, Promoted: true,
				Replicas: []rollout.Replica{{ID: "r1", Node: "n1", Current: true, Drain: true, State: rollout.Ready}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{now: t0, nodes: tt.nodes, views: tt.views}
			got, failing := rolloutInput(w, tt.app, tt.mine, ft)
			if d := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("rolloutInput (-want +got):\n%s", d)
			}
			if failing != tt.wantFailing {
				t.Errorf("failing = %q, want %q", failing, tt.wantFailing)
			}
		})
	}
}

func TestDescribeReplica(t *testing.T) {
	crashed := ctr("r1", nodeapi.StateExited, "")
	crashed.ExitCode, crashed.Error, crashed.Restarts = exit(2), "oom", 4
	unhealthy := ctr("r1", nodeapi.StateRunning, nodeapi.HealthUnhealthy)
	unhealthy.HealthOutput, unhealthy.ExitCode = "HTTP 500", exit(1)
	refused := upView()
	refused.refused = map[string]bool{"r1": true}
	refused.lastErr = map[string]string{"r1": "create: image not signed by a trusted key"}
	refusedAgain := upView(ctr("r1", nodeapi.StateCreated, ""))
	refusedAgain.refused = map[string]bool{"r1": true}
	tests := []struct {
		name string
		v    view
		want string
	}{
		{"refused by its node", refused, "replica r1 on n1: refused: create: image not signed by a trusted key"},
		{"refused but its container is there: described as it is", refusedAgain, "replica r1 on n1: created"},
		{"crashed", upView(crashed), "replica r1 on n1: exited, exit code 2 (oom), 4 restarts"},
		{"exited cleanly", func() view { c := ctr("r1", nodeapi.StateExited, ""); c.ExitCode = exit(0); return upView(c) }(), "replica r1 on n1: exited, exit code 0"},
		{"unhealthy: the check's complaint, not the exit code", upView(unhealthy), "replica r1 on n1: running, unhealthy (HTTP 500)"},
		{"no container reported", upView(), "replica r1 on n1: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, describeReplica("r1", "n1", tt.v)); d != "" {
				t.Errorf("describeReplica (-want +got):\n%s", d)
			}
		})
	}
}
