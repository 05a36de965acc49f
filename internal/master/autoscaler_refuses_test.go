package master

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/moatcloud/moat/internal/autoscale"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/sched"
)

// TestPoolRefuses: a pool refuses an unplaced app when one of its nodes
// reports a signing policy that refuses the app's image (the pool's nodes
// share its image); a node that has not reported (no policy known), a
// node of another pool, and a pool with no node refuse nothing.
func TestPoolRefuses(t *testing.T) {
	strict := store.NodeInfo{RequireSigned: true, Signers: []string{"ops@example ssh-ed25519 AAAA key-ops"}}
	node := func(name, pool string, info store.NodeInfo) store.Node {
		return store.Node{Name: name, Labels: map[string]string{store.PoolLabel: pool}, Info: info}
	}
	w := &world{nodes: map[string]store.Node{
		"p1-a": node("p1-a", "p1", strict),
		"p1-b": node("p1-b", "p1", store.NodeInfo{}), // not reported yet
		"p2-a": node("p2-a", "p2", store.NodeInfo{}),
		"s1":   {Name: "s1", Info: strict},
	}}
	w.unplaced = []sched.Request{{App: "web", Count: 1}, {App: "ops-tool", Count: 1}}
	signers := map[string][]string{"web": {"key-tenant"}, "ops-tool": {"key-ops"}}
	pools := []autoscale.Pool{{Name: "p1"}, {Name: "p2"}, {Name: "p3"}}
	poolRefuses(w, pools, func(app string) []string { return signers[app] })
	want := []autoscale.Pool{{Name: "p1", Refuses: map[string]bool{"web": true}}, {Name: "p2"}, {Name: "p3"}}
	if d := cmp.Diff(want, pools, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("pools (-want +got):\n%s", d)
	}
}
