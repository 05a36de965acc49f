package master

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
	"github.com/moatcloud/moat/internal/sshx"
)

// The defaults: a singleton moves 45 s after its node went away, once
// the node's 30 s lease (and a second) ran out.
var testFence = fenceTimes{Grace: 45 * time.Second, LeaseTTL: 30 * time.Second}

func TestSurelyStopped(t *testing.T) {
	tests := []struct {
		name string
		v    view
		want bool
	}{
		{"up", view{state: sshx.Up, since: ago(time.Hour)}, false},
		{"connecting (never up)", view{state: sshx.Connecting, since: ago(time.Hour)}, false},
		{"not watched", view{}, false},
		{"down less than the grace", downView(ago(44*time.Second), ago(time.Hour)), false},
		{"down for the grace, lease out for TTL and a second", downView(ago(45*time.Second), ago(31*time.Second+time.Millisecond)), true},
		{"down for the grace, lease out exactly TTL and a second: not yet", downView(ago(45*time.Second), ago(31*time.Second)), false},
		{"down for the grace, lease out for the TTL only: not yet", downView(ago(45*time.Second), ago(30*time.Second)), false},
		{"down long, lease renewed since it went down: not yet", downView(ago(time.Hour), ago(10*time.Second)), false},
		{"down long, never leased", downView(ago(time.Hour), time.Time{}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := surelyStopped(tt.v, t0, testFence); got != tt.want {
				t.Errorf("surelyStopped = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFailoverStops(t *testing.T) {
	views := map[string]view{
		"n1":        downView(ago(10*time.Second), ago(10*time.Second)), // just went away
		"n2":        upView(),
		"n3":        downView(ago(time.Minute), ago(time.Minute)), // away for good
		"n4":        {state: sshx.Connecting, since: ago(time.Hour)},
		"n6":        downView(ago(time.Minute), ago(20*time.Second)), // down past the grace, lease still valid
		"recovered": upView(),
	}
	plain := spec.App{Replicas: 3}
	single := spec.App{Replicas: 1, Singleton: true}
	pinned := spec.App{Replicas: 3, Volumes: []spec.Volume{{Node: "n1", Source: "/srv", Target: "/data"}}}
	all := []store.Replica{rep("r1", "n1", "t2"), rep("r2", "n2", "t2"), rep("r3", "n3", "t2"), rep("r4", "n4", "t2"),
		rep("r5", "n5", "t2"), stopping("r6", "n1", "t1")}
	tests := []struct {
		name string
		app  spec.App
		mine []store.Replica
		want []string
	}{
		{"every replica wanted on a node that is down", plain, all, []string{"r1", "r3"}},
		{"none on a node that is up", plain, []store.Replica{rep("r2", "n2", "t2")}, nil},
		{"not one on a node still connecting, nor one not watched", plain, []store.Replica{rep("r4", "n4", "t2"), rep("r5", "n5", "t2")}, nil},
		{"not one already stopping", plain, []store.Replica{stopping("r6", "n1", "t1")}, nil},
		{"singleton on a node down less than the grace: stays", single, []store.Replica{rep("r1", "n1", "t2")}, nil},
		{"singleton on a node down past the grace, lease out: moves", single, []store.Replica{rep("r3", "n3", "t2")}, []string{"r3"}},
		{"singleton on a node down past the grace, lease valid: stays", single, []store.Replica{rep("r7", "n6", "t2")}, nil},
		{"pinned app: never moves", pinned, all, nil},
		{"pinned singleton: never moves", spec.App{Replicas: 1, Singleton: true, Volumes: pinned.Volumes}, []store.Replica{rep("r3", "n3", "t2")}, nil},
		// A replica placed on a node that was removed meanwhile (the pass
		// looked before moat node rm or a pool's retirement deleted it): no
		// one will ever run it, and counted it would hold a drain or a
		// rolling update back for ever. It goes whatever the app.
		{"wanted on a node no longer enrolled: stops", plain, []store.Replica{rep("r8", "gone", "t2"), rep("r2", "n2", "t2")}, []string{"r8"}},
		{"singleton on a node no longer enrolled: stops", single, []store.Replica{rep("r8", "gone", "t2")}, []string{"r8"}},
		{"pinned app on a node no longer enrolled: stops", pinned, []store.Replica{rep("r8", "gone", "t2")}, []string{"r8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{now: t0, views: views, nodes: nodes("n1", "n2", "n3", "n4", "n5", "n6", "recovered")}
			var got []string
			for _, r := range failoverStops(w, webApp(tt.app, store.StatusDeployed), tt.mine, testFence) {
				got = append(got, r.ID)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("failoverStops (-want +got):\n%s", d)
			}
		})
	}
}

func TestPlanFence(t *testing.T) {
	unlabelled := nodeapi.Container{ID: "x", State: nodeapi.StateRunning} // not made for a replica
	old := ctr("d1", nodeapi.StateRunning, "")
	old.Spec.Labels["moat.app"] = "db"
	unsynced := upView(running("r5"), running("gone"))
	unsynced.synced = false
	tests := []struct {
		name  string
		nodes map[string]store.Node
		views map[string]view
		reps  []store.Replica
		want  fencePlan
	}{
		{"all as wanted: nothing", nodes("n1", "n2"),
			map[string]view{"n1": upView(running("r1")), "n2": upView(running("r2"), unlabelled)},
			[]store.Replica{rep("r1", "n1", "t2"), rep("r2", "n2", "t2")},
			fencePlan{}},
		{"containers not wanted there are stopped, their apps fenced on that node", nodes("n1", "n2"),
			map[string]view{"n1": upView(running("r1"), running("r3"), running("r2")), "n2": upView(running("r2"), old)},
			[]store.Replica{rep("r1", "n1", "t2"), rep("r2", "n2", "t2"), stopping("r3", "n1", "t1")},
			fencePlan{
				Stop:    []containerRef{{"n1", "r2"}, {"n1", "r3"}, {"n2", "d1"}},
				Fencing: map[string]map[string]bool{"n1": {"web": true}, "n2": {"db": true}},
			}},
		{"a node not in sync is left alone: its view may be stale", nodes("n3"),
			map[string]view{"n3": unsynced}, []store.Replica{stopping("r5", "n3", "t1"), stopping("r8", "n3", "t1")},
			fencePlan{}},
		{"stopped replicas whose containers are gone are forgotten", nodes("n1"),
			map[string]view{"n1": upView(running("r3"))},
			[]store.Replica{stopping("r3", "n1", "t1"), stopping("r4", "n1", "t1")},
			fencePlan{Stop: []containerRef{{"n1", "r3"}}, Fencing: map[string]map[string]bool{"n1": {"web": true}}, Forget: []string{"r4"}}},
		{"stopped replicas of a node removed are forgotten, of one not watched kept", nodes("n2"),
			map[string]view{},
			[]store.Replica{stopping("r6", "gone", "t1"), stopping("r7", "n2", "t1")},
			fencePlan{Forget: []string{"r6"}}},
		{"a replica wanted is never forgotten", nodes("n1"), map[string]view{"n1": upView()},
			[]store.Replica{rep("r1", "n1", "t2")}, fencePlan{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{now: t0, nodes: tt.nodes, views: tt.views, replicas: tt.reps}
			got := planFence(w, nil)
			sortRefs := cmpopts.SortSlices(func(a, b containerRef) bool { return a.Node+"/"+a.ID < b.Node+"/"+b.ID })
			if d := cmp.Diff(tt.want, got, sortRefs, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("planFence (-want +got):\n%s", d)
			}
		})
	}
}
