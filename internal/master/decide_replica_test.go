package master

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/rollout"
	"github.com/moatcloud/moat/internal/spec"
	"github.com/moatcloud/moat/internal/sshx"
)

func TestReplicaState(t *testing.T) {
	unsynced := upView(running("r1"))
	unsynced.synced = false
	tests := []struct {
		name  string
		v     view
		known bool
		want  rollout.State
		wantC string // the container's state, "" for none
	}{
		{"node not watched", view{}, false, rollout.Unknown, ""},
		{"node down (its last report kept)", view{state: sshx.Down, synced: true, containers: upView(running("r1")).containers}, true, rollout.Unknown, ""},
		{"node connecting", view{state: sshx.Connecting}, true, rollout.Unknown, ""},
		{"node up, not yet in sync", unsynced, true, rollout.Unknown, ""},
		{"no container yet", upView(), true, rollout.Pending, ""},
		{"created", upView(ctr("r1", nodeapi.StateCreated, "")), true, rollout.Pending, nodeapi.StateCreated},
		{"running, no health check", upView(running("r1")), true, rollout.Ready, nodeapi.StateRunning},
		{"running, healthy", upView(ctr("r1", nodeapi.StateRunning, nodeapi.HealthHealthy)), true, rollout.Ready, nodeapi.StateRunning},
		{"running, check not passed yet", upView(ctr("r1", nodeapi.StateRunning, nodeapi.HealthStarting)), true, rollout.Starting, nodeapi.StateRunning},
		{"running, unhealthy", upView(ctr("r1", nodeapi.StateRunning, nodeapi.HealthUnhealthy)), true, rollout.Failed, nodeapi.StateRunning},
		{"running, a health the master does not know", upView(ctr("r1", nodeapi.StateRunning, "sulking")), true, rollout.Failed, nodeapi.StateRunning},
		{"restarting (crash-looping)", upView(ctr("r1", nodeapi.StateRestarting, "")), true, rollout.Failed, nodeapi.StateRestarting},
		{"restarting, was healthy", upView(ctr("r1", nodeapi.StateRestarting, nodeapi.HealthHealthy)), true, rollout.Failed, nodeapi.StateRestarting},
		{"exited", upView(ctr("r1", nodeapi.StateExited, "")), true, rollout.Failed, nodeapi.StateExited},
		{"a state the master does not know", upView(ctr("r1", "paused", "")), true, rollout.Failed, "paused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, c := replicaState(rep("r1", "n1", "t2"), tt.v, tt.known)
			gotC := ""
			if c != nil {
				gotC = c.State
			}
			if got != tt.want || gotC != tt.wantC {
				t.Errorf("replicaState = %s with container %q, want %s with %q", got, gotC, tt.want, tt.wantC)
			}
		})
	}
}

func TestExitedForGood(t *testing.T) {
	exited := func(policy string, retries int, code *int, fenced bool) nodeapi.Container {
		return nodeapi.Container{ID: "r1", State: nodeapi.StateExited, ExitCode: code,
			Spec: nodeapi.ContainerSpec{Restart: nodeapi.RestartPolicy{Policy: policy, MaxRetries: retries}, Fenced: fenced}}
	}
	fenceStopped := func(c nodeapi.Container) nodeapi.Container { c.FenceStopped = true; return c }
	withError := func(c nodeapi.Container, e string) nodeapi.Container { c.Error = e; return c }
	tests := []struct {
		name string
		c    nodeapi.Container
		want bool
	}{
		{"always, exit 0: started again", exited(nodeapi.RestartAlways, 0, exit(0), false), false},
		{"always, exit 1: started again", exited(nodeapi.RestartAlways, 0, exit(1), false), false},
		{"always, no exit code: started again", exited(nodeapi.RestartAlways, 0, nil, false), false},
		{"no, exit 0: for good", exited(nodeapi.RestartNo, 0, exit(0), false), true},
		{"no, exit 1: for good", exited(nodeapi.RestartNo, 0, exit(1), false), true},
		{"no policy given: for good", exited("", 0, exit(1), false), true},
		{"on-failure, exit 1, unlimited retries: started again", exited(nodeapi.RestartOnFailure, 0, exit(1), false), false},
		{"on-failure, exit 137: started again", exited(nodeapi.RestartOnFailure, 0, exit(137), false), false},
		{"on-failure, exit 0: for good", exited(nodeapi.RestartOnFailure, 0, exit(0), false), true},
		{"on-failure, no exit code: for good", exited(nodeapi.RestartOnFailure, 0, nil, false), true},
		{"on-failure, exit 0 with an error (lost at a reboot): a failure, started again",
			withError(exited(nodeapi.RestartOnFailure, 0, exit(0), false), "the shim was gone"), false},
		{"on-failure, exit 1, retries used up: for good", exited(nodeapi.RestartOnFailure, 3, exit(1), false), true},
		{"a singleton that ended by itself, policy no: for good", exited(nodeapi.RestartNo, 0, exit(0), true), true},
		{"a singleton that ended cleanly, on-failure: for good", exited(nodeapi.RestartOnFailure, 0, exit(0), true), true},
		{"a singleton that failed, on-failure: started again", exited(nodeapi.RestartOnFailure, 0, exit(1), true), false},
		{"stopped by the fence, policy no: started again", fenceStopped(exited(nodeapi.RestartNo, 0, exit(137), true)), false},
		{"stopped by the fence, on-failure retries used up: started again",
			fenceStopped(exited(nodeapi.RestartOnFailure, 3, exit(137), true)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitedForGood(tt.c); got != tt.want {
				t.Errorf("exitedForGood = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConvergeOp(t *testing.T) {
	withPolicy := func(c nodeapi.Container, policy string, code int) nodeapi.Container {
		c.Spec.Restart.Policy, c.ExitCode = policy, exit(code)
		return c
	}
	n1 := upView(
		running("r1"),
		withPolicy(ctr("r2", nodeapi.StateExited, ""), nodeapi.RestartAlways, 0),
		withPolicy(ctr("r3", nodeapi.StateExited, ""), nodeapi.RestartNo, 0),
		withPolicy(ctr("r4", nodeapi.StateRestarting, ""), nodeapi.RestartAlways, 1),
		ctr("r5", nodeapi.StateCreated, ""),
	)
	n1.inflight = map[string]bool{"r6": true}
	n1.refused = map[string]bool{"r7": true}
	unsynced := upView()
	unsynced.synced = false
	views := map[string]view{"n1": n1, "n2": downView(ago(time.Second), ago(time.Second)), "n3": unsynced, "n4": upView()}
	apps := map[string]appState{
		"web": webApp(spec.App{Replicas: 3}, store.StatusDeployed),
		"db":  {App: store.App{Name: "db"}, spec: spec.App{Name: "db", Replicas: 1, Singleton: true}},
	}
	fencing := map[string]map[string]bool{"n4": {"db": true, "web": true}}
	db := func(id, node string) store.Replica { r := rep(id, node, "t1"); r.App = "db"; return r }
	tests := []struct {
		name string
		r    store.Replica
		want replicaOp
	}{
		{"no container: create", rep("r0", "n1", "t2"), opCreate},
		{"running: nothing", rep("r1", "n1", "t2"), opNone},
		{"exited, restart always: start", rep("r2", "n1", "t2"), opStart},
		{"exited for good: nothing", rep("r3", "n1", "t2"), opNone},
		{"restarting: the node restarts it", rep("r4", "n1", "t2"), opNone},
		{"created, not started: nothing (the node starts what it creates)", rep("r5", "n1", "t2"), opNone},
		{"an operation under way: nothing", rep("r6", "n1", "t2"), opNone},
		{"refused by the node for good: not created again", rep("r7", "n1", "t2"), opNone},
		{"being stopped: nothing", stopping("r0", "n1", "t2"), opNone},
		{"node down: nothing", rep("r0", "n2", "t2"), opNone},
		{"node not in sync: nothing", rep("r0", "n3", "t2"), opNone},
		{"node not watched: nothing", rep("r0", "n9", "t2"), opNone},
		{"an app that is gone: nothing", func() store.Replica { r := rep("r0", "n1", "t2"); r.App = "gone"; return r }(), opNone},
		{"singleton while the fence stops its old copy there: waits", db("d2", "n4"), opNone},
		{"singleton, fence busy on another node: create", db("d2", "n1"), opCreate},
		{"not a singleton: created beside the stale copy being stopped", rep("r0", "n4", "t2"), opCreate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{now: t0, views: views}
			if d := cmp.Diff(tt.want, convergeOp(w, tt.r, apps, fencing)); d != "" {
				t.Errorf("convergeOp (-want +got):\n%s", d)
			}
		})
	}
}
