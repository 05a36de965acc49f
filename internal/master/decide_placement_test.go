package master

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sched"
	"github.com/moatcloud/moat/internal/spec"
)

// Fingerprints, as images list their signers and nodes their trusted keys.
const (
	alice = "SHA256:aliceaaaa"
	bob   = "SHA256:bobbbbbbb"
	eve   = "SHA256:eveeeeeee"
)

// signedNode runs only images signed by these allowed_signers entries.
func signedNode(signers ...string) nodeapi.NodeInfo {
	return nodeapi.NodeInfo{RequireSigned: true, Signers: signers}
}

func TestAccepts(t *testing.T) {
	tests := []struct {
		name    string
		node    nodeapi.NodeInfo
		signers []string // the image's
		want    bool
	}{
		{"unsigned node, unsigned image", nodeapi.NodeInfo{}, nil, true},
		{"unsigned node, signed image", nodeapi.NodeInfo{}, []string{eve}, true},
		{"unsigned node listing signers it does not require", nodeapi.NodeInfo{Signers: []string{"alice " + alice}}, nil, true},
		{"signed node, unsigned image", signedNode("alice " + alice), nil, false},
		{"signed node, image signed by a key it trusts", signedNode("alice " + alice), []string{alice}, true},
		{"signed node, image signed by another key", signedNode("alice " + alice), []string{eve}, false},
		{"signed node, image signed by another and a trusted key", signedNode("alice " + alice), []string{eve, alice}, true},
		{"signed node, second of its signers", signedNode("alice "+alice, "bob "+bob), []string{bob}, true},
		{"signed node, several principals for one key", signedNode("alice,ops " + alice), []string{alice}, true},
		{"signed node, a bare fingerprint", signedNode(alice), []string{alice}, true},
		{"signed node trusting no one", signedNode(), []string{alice}, false},
		{"signed node, a blank entry", signedNode(""), []string{""}, false},
		{"signed node, a principal is not a fingerprint", signedNode("alice " + alice), []string{"alice"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := accepts(tt.node, tt.signers); got != tt.want {
				t.Errorf("accepts = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAcceptProblem(t *testing.T) {
	node := func(info nodeapi.NodeInfo) store.Node { return store.Node{Info: infoRow(info)} }
	probe := image.Image{Name: "probe:1", Digest: "sha256:abc"}
	signedBy := func(img image.Image, signers ...string) image.Image { img.Signers = signers; return img }
	tests := []struct {
		name  string
		nodes []store.Node
		img   image.Image
		want  string // "" for none
	}{
		{"no nodes yet: nothing to refuse", nil, probe, ""},
		{"a node that does not require signatures", []store.Node{node(signedNode("alice " + alice)), node(nodeapi.NodeInfo{})}, probe, ""},
		{"one signed node trusts its signer", []store.Node{node(signedNode("bob " + bob)), node(signedNode("alice " + alice))}, signedBy(probe, alice), ""},
		{"unsigned, every node signed", []store.Node{node(signedNode("bob " + bob)), node(signedNode("alice "+alice, "bob "+bob))}, probe,
			"image probe:1 is not signed, and every node runs only images signed by a key it trusts (alice " + alice + "; bob " + bob +
				"): sign it with moat image sign probe:1 --key KEY: invalid"},
		{"signed by keys no node trusts", []store.Node{node(signedNode("alice " + alice))}, signedBy(probe, eve, bob),
			"image probe:1 is signed only by " + eve + ", " + bob + ", and every node runs only images signed by a key it trusts (alice " + alice +
				"): sign it with moat image sign probe:1 --key KEY: invalid"},
		{"unnamed: by digest", []store.Node{node(signedNode())}, image.Image{Digest: "sha256:abc"},
			"image sha256:abc is not signed, and every node runs only images signed by a key it trusts (): sign it with moat image sign sha256:abc --key KEY: invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := acceptProblem(tt.nodes, tt.img)
			got := ""
			if err != nil {
				got = err.Error()
				if !errors.Is(err, errs.ErrInvalid) {
					t.Errorf("not ErrInvalid: %v", err)
				}
			}
			// The kind's text is the errs package's: compare up to it.
			got = strings.Replace(got, errs.ErrInvalid.Error(), "invalid", 1)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("acceptProblem (-want +got):\n%s", d)
			}
		})
	}
}

func TestPlacementChanged(t *testing.T) {
	base := nodeapi.NodeInfo{CPUs: 4, MemoryBytes: 8 << 30, RequireSigned: true, Signers: []string{"alice " + alice}, DiskUsedBytes: 1 << 30, ImageBytes: 100}
	tests := []struct {
		name string
		f    func(*nodeapi.NodeInfo)
		want bool
	}{
		{"the same", func(*nodeapi.NodeInfo) {}, false},
		{"disk use and images: not placement", func(i *nodeapi.NodeInfo) { i.DiskUsedBytes, i.ImageBytes, i.Running = 2<<30, 200, 3 }, false},
		{"peer fetch: not placement", func(i *nodeapi.NodeInfo) { i.PeerFetch = true }, false},
		{"CPUs", func(i *nodeapi.NodeInfo) { i.CPUs = 8 }, true},
		{"memory", func(i *nodeapi.NodeInfo) { i.MemoryBytes = 16 << 30 }, true},
		{"stops requiring signatures", func(i *nodeapi.NodeInfo) { i.RequireSigned = false }, true},
		{"trusts another key", func(i *nodeapi.NodeInfo) { i.Signers = append(slices.Clone(i.Signers), "bob "+bob) }, true},
		{"trusts no key", func(i *nodeapi.NodeInfo) { i.Signers = nil }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base
			tt.f(&b)
			if got := placementChanged(base, b); got != tt.want {
				t.Errorf("placementChanged = %v, want %v", got, tt.want)
			}
		})
	}
	if placementChanged(nodeapi.NodeInfo{}, nodeapi.NodeInfo{Signers: []string{}}) {
		t.Error("no signers and an empty list differ")
	}
}

func TestCouldGrow(t *testing.T) {
	unsynced := upView()
	unsynced.synced = false
	tests := []struct {
		name  string
		nodes map[string]store.Node
		views map[string]view
		want  bool
	}{
		{"no nodes", nil, nil, false},
		{"every node up and in sync", nodes("n1", "n2"), map[string]view{"n1": upView(), "n2": upView()}, false},
		{"a node not watched", nodes("n1", "n2"), map[string]view{"n1": upView()}, true},
		{"a node not in sync (down, or connecting)", nodes("n1", "n2"), map[string]view{"n1": upView(), "n2": unsynced}, true},
		{"a view of a node no longer enrolled does not count", nodes("n1"), map[string]view{"n1": upView(), "old": unsynced}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := couldGrow(&world{nodes: tt.nodes, views: tt.views}); got != tt.want {
				t.Errorf("couldGrow = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSchedNodes(t *testing.T) {
	unsynced := upView()
	unsynced.synced = false
	node := func(name string, cpus int, f func(*store.Node)) store.Node {
		n := store.Node{Name: name, Labels: map[string]string{"zone": "a"}, Info: store.NodeInfo{CPUs: cpus, MemoryBytes: 4 << 30}}
		if f != nil {
			f(&n)
		}
		return n
	}
	w := &world{
		now: t0,
		nodes: map[string]store.Node{
			"n1": node("n1", 2, nil),
			"n2": node("n2", 2, func(n *store.Node) { n.Cordoned = true }),
			"n3": node("n3", 2, func(n *store.Node) { n.Draining = true }), // (drain cordons too; either keeps replicas off)
			"n4": node("n4", 2, nil),
			"n5": node("n5", 2, nil),
			"n6": node("n6", 4, func(n *store.Node) { n.Info.RequireSigned, n.Info.Signers = true, []string{"alice " + alice} }),
		},
		views: map[string]view{"n1": upView(), "n2": upView(), "n3": upView(), "n4": unsynced, "n6": upView()},
		apps:  []appState{webApp(spec.App{Replicas: 3, Resources: spec.Resources{MilliCPU: 100, MemoryBytes: 32 << 20}}, store.StatusDeployed)},
		replicas: []store.Replica{rep("r1", "n1", "t2"), rep("r2", "n1", "t1"), stopping("r3", "n1", "t1"), rep("r4", "n6", "t2"),
			{ID: "x1", App: "gone", Node: "n1", Desired: store.Run}},
	}
	capacity := sched.Resources{MilliCPU: 2000, MemoryBytes: 4 << 30}
	labels := map[string]string{"zone": "a"}
	want := []sched.Node{
		{Name: "n1", Labels: labels, Capacity: capacity, Allocated: sched.Resources{MilliCPU: 200, MemoryBytes: 64 << 20}},
		{Name: "n2", Labels: labels, Capacity: capacity, Cordoned: true},
		{Name: "n3", Labels: labels, Capacity: capacity, Cordoned: true},
		{Name: "n4", Labels: labels, Capacity: capacity, Down: true},
		{Name: "n5", Labels: labels, Capacity: capacity, Down: true},
		{Name: "n6", Labels: labels, Capacity: sched.Resources{MilliCPU: 4000, MemoryBytes: 4 << 30},
			Allocated: sched.Resources{MilliCPU: 100, MemoryBytes: 32 << 20}, RefusesImage: true},
	}
	got := schedNodes(w, []string{bob})
	byName := cmpopts.SortSlices(func(a, b sched.Node) bool { return a.Name < b.Name })
	if d := cmp.Diff(want, got, byName); d != "" {
		t.Errorf("schedNodes, image signed by bob (-want +got):\n%s", d)
	}
	want[5].RefusesImage = false
	if d := cmp.Diff(want, schedNodes(w, []string{alice}), byName); d != "" {
		t.Errorf("schedNodes, image signed by alice (-want +got):\n%s", d)
	}
}

func TestPlaceRequest(t *testing.T) {
	sp := spec.App{Replicas: 3, Placement: spec.Placement{Labels: map[string]string{"zone": "a"}, Spread: true},
		Resources: spec.Resources{MilliCPU: 100, MemoryBytes: 32 << 20}}
	mine := []store.Replica{rep("r1", "n1", "t2"), rep("r2", "n1", "t1"), stopping("r3", "n2", "t2"), rep("r4", "n2", "t2"), rep("r5", "n3", "t1")}
	tests := []struct {
		name string
		app  spec.App
		want sched.Request
	}{
		{"spread counts the wanted replicas of the target template only", sp,
			sched.Request{App: "web", Tenant: "default", Count: 2, Labels: sp.Placement.Labels, Spread: true,
				Resources: sched.Resources{MilliCPU: 100, MemoryBytes: 32 << 20}, Existing: map[string]int{"n1": 1, "n2": 1}}},
		{"pinned to its volumes' node", spec.App{Replicas: 3, Volumes: []spec.Volume{{Node: "n3", Source: "/srv", Target: "/data"}}},
			sched.Request{App: "web", Tenant: "default", Count: 2, Pinned: "n3", Existing: map[string]int{"n1": 1, "n2": 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := placeRequest(webApp(tt.app, store.StatusProgressing), mine, 2)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("placeRequest (-want +got):\n%s", d)
			}
		})
	}
}

func TestSpreadRequest(t *testing.T) {
	spread := spec.App{Replicas: 2, Placement: spec.Placement{Spread: true}, Resources: spec.Resources{MilliCPU: 100, MemoryBytes: 32 << 20}}
	settledViews := map[string]view{"n1": upView(running("r1"), running("r2")), "n2": upView(), "n3": upView()}
	settled := []store.Replica{rep("r1", "n1", "t2"), rep("r2", "n1", "t2")}
	with := func(f func(*spec.App)) spec.App { sp := spread; f(&sp); return sp }
	moving := settled[1]
	moving.Note = noteMoving
	tests := []struct {
		name   string
		app    appState
		views  map[string]view
		mine   []store.Replica
		wantOK bool
	}{
		{"settled: ask", webApp(spread, store.StatusDeployed), settledViews, settled, true},
		{"singleton: never", webApp(with(func(sp *spec.App) { sp.Singleton = true }), store.StatusDeployed), settledViews, settled, false},
		{"pinned to its volumes: never", webApp(with(func(sp *spec.App) { sp.Volumes = []spec.Volume{{Node: "n1"}} }), store.StatusDeployed), settledViews, settled, false},
		{"does not spread", webApp(with(func(sp *spec.App) { sp.Placement.Spread = false }), store.StatusDeployed), settledViews, settled, false},
		{"opted out (rebalance: false)", webApp(with(func(sp *spec.App) { sp.Placement.NoRebalance = true }), store.StatusDeployed), settledViews, settled, false},
		{"still rolling out", webApp(spread, store.StatusProgressing), settledViews, settled, false},
		{"waiting at its canaries", webApp(spread, store.StatusCanary), settledViews, settled, false},
		{"a node away (it may come back)", webApp(spread, store.StatusDeployed),
			map[string]view{"n1": settledViews["n1"], "n2": upView()}, settled, false},
		{"a replica on its way out", webApp(spread, store.StatusDeployed), settledViews,
			append(slices.Clone(settled), stopping("r3", "n2", "t2")), false},
		{"a replica not ready", webApp(spread, store.StatusDeployed),
			map[string]view{"n1": upView(running("r1"), ctr("r2", "running", nodeapi.HealthStarting)), "n2": upView(), "n3": upView()}, settled, false},
		{"a replica of an older template", webApp(spread, store.StatusDeployed), settledViews,
			[]store.Replica{rep("r1", "n1", "t2"), rep("r2", "n1", "t1")}, false},
		{"a replica already moving", webApp(spread, store.StatusDeployed), settledViews, []store.Replica{settled[0], moving}, false},
		{"fewer replicas than asked for", webApp(with(func(sp *spec.App) { sp.Replicas = 3 }), store.StatusDeployed), settledViews, settled, false},
		{"more replicas than asked for", webApp(with(func(sp *spec.App) { sp.Replicas = 1 }), store.StatusDeployed), settledViews, settled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{now: t0, nodes: nodes("n1", "n2", "n3"), views: tt.views}
			got, ok := spreadRequest(w, tt.app, tt.mine)
			if ok != tt.wantOK {
				t.Fatalf("spreadRequest settled = %v, want %v", ok, tt.wantOK)
			}
			var want sched.Request
			if ok {
				want = sched.Request{App: "web", Tenant: "default", Spread: true, Resources: sched.Resources{MilliCPU: 100, MemoryBytes: 32 << 20}, Existing: map[string]int{"n1": 2}}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("spreadRequest (-want +got):\n%s", d)
			}
		})
	}
}

func TestNewestOn(t *testing.T) {
	at := func(r store.Replica, d time.Duration) store.Replica { r.Created = ago(d); return r }
	mine := []store.Replica{
		at(rep("old", "n1", "t2"), time.Hour),
		at(rep("newest", "n1", "t2"), time.Minute),
		at(rep("elsewhere", "n2", "t2"), time.Second),
		at(rep("middle", "n1", "t2"), 10*time.Minute),
	}
	tests := []struct{ node, want string }{{"n1", "newest"}, {"n2", "elsewhere"}, {"n3", ""}}
	for _, tt := range tests {
		if got := newestOn(mine, tt.node).ID; got != tt.want {
			t.Errorf("newestOn(%s) = %q, want %q", tt.node, got, tt.want)
		}
	}
}
