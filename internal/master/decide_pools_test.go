package master

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/provider"
)

var poolNow = time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)

func poolAgo(d time.Duration) time.Time { return poolNow.Add(-d) }

func TestClampDesired(t *testing.T) {
	for _, c := range []struct{ d, lo, hi, want int }{
		{0, 1, 4, 1}, {5, 1, 4, 4}, {2, 1, 4, 2}, {3, 2, 0, 2}, {-1, 0, 0, 0},
	} {
		if got := clampDesired(c.d, c.lo, c.hi); got != c.want {
			t.Errorf("clampDesired(%d, %d, %d) = %d, want %d", c.d, c.lo, c.hi, got, c.want)
		}
	}
}

func TestBreaker(t *testing.T) {
	calls := func(ages ...time.Duration) []store.PoolCreation {
		var out []store.PoolCreation
		for _, a := range ages {
			out = append(out, store.PoolCreation{At: poolAgo(a), Outcome: outcomeFailed})
		}
		return out
	}
	for _, c := range []struct {
		name    string
		in      []store.PoolCreation
		perHour int
		want    breakerState
	}{
		{"none", nil, 3, breakerState{Remaining: 3}},
		{"under", calls(time.Minute, 10*time.Minute), 3, breakerState{Calls: 2, Remaining: 1}},
		{"at the cap", calls(time.Minute, 10*time.Minute, 50*time.Minute), 3,
			breakerState{Calls: 3, Open: true, Until: poolAgo(50 * time.Minute).Add(time.Hour)}},
		{"older than an hour do not count", calls(61*time.Minute, 2*time.Hour, time.Minute), 2, breakerState{Calls: 1, Remaining: 1}},
		{"exactly an hour old does not count", calls(time.Hour), 1, breakerState{Remaining: 1}},
		{"future rows do not count", calls(-time.Minute), 1, breakerState{Remaining: 1}},
		{"no allowance is open", nil, 0, breakerState{Open: true}},
		{"past the cap", calls(1, 2, 3, 4), 2, breakerState{Calls: 4, Open: true, Until: poolAgo(4).Add(time.Hour)}},
	} {
		if got := breaker(c.in, c.perHour, poolNow); got != c.want {
			t.Errorf("%s: breaker = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestCreateBackoff(t *testing.T) {
	for _, c := range []struct {
		base  time.Duration
		fails int
		want  time.Duration
	}{
		{10 * time.Second, 0, 0}, {10 * time.Second, 1, 10 * time.Second}, {10 * time.Second, 2, 20 * time.Second},
		{10 * time.Second, 5, 160 * time.Second}, {10 * time.Second, 6, 5 * time.Minute}, {10 * time.Second, 100, 5 * time.Minute},
		{10 * time.Minute, 1, 10 * time.Minute}, {0, 3, 0},
	} {
		if got := createBackoff(c.base, c.fails); got != c.want {
			t.Errorf("createBackoff(%s, %d) = %s, want %s", c.base, c.fails, got, c.want)
		}
	}
}

func TestPlacements(t *testing.T) {
	sold := []provider.ServerType{{Name: "cx22", Regions: []string{"fsn1"}}, {Name: "cx22", Regions: []string{"nbg1"}}, {Name: "cx32", Regions: []string{"nbg1"}}, {Name: "cpx11"}}
	for _, c := range []struct {
		name           string
		types, regions []string
		recent         []store.PoolCreation
		want           []placement
	}{
		{"types first, then regions", []string{"cx22", "cpx11"}, []string{"fsn1", "nbg1"}, nil,
			[]placement{{"cx22", "fsn1"}, {"cpx11", "fsn1"}, {"cx22", "nbg1"}, {"cpx11", "nbg1"}}},
		{"a type not sold in a region is skipped", []string{"cx32", "cx22"}, []string{"fsn1", "nbg1"}, nil,
			[]placement{{"cx22", "fsn1"}, {"cx32", "nbg1"}, {"cx22", "nbg1"}}},
		{"a type listed once per region (Hetzner)", []string{"cx22"}, []string{"hel1", "fsn1", "nbg1"}, nil,
			[]placement{{"cx22", "fsn1"}, {"cx22", "nbg1"}}},
		{"unknown types are tried (the provider answers)", []string{"zz"}, []string{"fsn1"}, nil, []placement{{"zz", "fsn1"}}},
		{"no regions", []string{"cx22", "cpx11"}, nil, nil, []placement{{"cx22", ""}, {"cpx11", ""}}},
		{"a recent capacity error goes last", []string{"cx22", "cpx11"}, []string{"fsn1", "nbg1"},
			[]store.PoolCreation{{Type: "cx22", Region: "fsn1", At: poolAgo(time.Minute), Outcome: outcomeCapacity}},
			[]placement{{"cpx11", "fsn1"}, {"cx22", "nbg1"}, {"cpx11", "nbg1"}, {"cx22", "fsn1"}}},
		{"the most recent failure last of all", []string{"cx22", "cpx11"}, []string{"fsn1"},
			[]store.PoolCreation{
				{Type: "cpx11", Region: "fsn1", At: poolAgo(time.Minute), Outcome: outcomeTimeout},
				{Type: "cx22", Region: "fsn1", At: poolAgo(2 * time.Minute), Outcome: outcomeCapacity},
			},
			[]placement{{"cx22", "fsn1"}, {"cpx11", "fsn1"}}},
		{"old failures and successes do not reorder", []string{"cx22", "cpx11"}, []string{"fsn1"},
			[]store.PoolCreation{
				{Type: "cx22", Region: "fsn1", At: poolAgo(time.Hour), Outcome: outcomeCapacity},
				{Type: "cx22", Region: "fsn1", At: poolAgo(time.Minute), Outcome: outcomeCreated},
			},
			[]placement{{"cx22", "fsn1"}, {"cpx11", "fsn1"}}},
	} {
		got := placements(c.types, c.regions, sold, c.recent, poolNow)
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s: placements (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestPlanPool(t *testing.T) {
	srv := func(name, state, id string, age time.Duration) store.PoolServer {
		return store.PoolServer{Name: name, State: state, ProviderID: id, Created: poolAgo(age)}
	}
	recent := func(n int) []store.PoolCreation {
		var out []store.PoolCreation
		for range n {
			out = append(out, store.PoolCreation{At: poolAgo(time.Minute), Outcome: outcomeCreated})
		}
		return out
	}
	for _, c := range []struct {
		name string
		in   poolInput
		want poolPlan
	}{
		{"empty pool at min 1", poolInput{Min: 1, Max: 4, PerHour: 10},
			poolPlan{Desired: 1, Create: 1}},
		{"desired clamped to max", poolInput{Min: 1, Max: 4, Desired: 9, PerHour: 10},
			poolPlan{Desired: 4, Create: 4}},
		{"pending servers count", poolInput{Min: 0, Max: 4, Desired: 3, PerHour: 10, Busy: map[string]bool{"b": true}, Servers: []store.PoolServer{
			srv("a", store.ServerReady, "1", time.Hour), srv("b", store.ServerCreating, "", time.Second), srv("c", store.ServerBooting, "3", time.Second)}},
			poolPlan{Desired: 3, Active: 3}},
		{"retiring and destroying do not count", poolInput{Min: 0, Max: 4, Desired: 2, PerHour: 10, Servers: []store.PoolServer{
			srv("a", store.ServerRetiring, "1", time.Hour), srv("b", store.ServerDestroying, "2", time.Hour), srv("c", store.ServerReady, "3", time.Hour)}},
			poolPlan{Desired: 2, Active: 1, Create: 1}},
		{"the breaker caps creations", poolInput{Min: 0, Max: 10, Desired: 5, PerHour: 3, Creations: recent(1)},
			poolPlan{Desired: 5, Create: 2, Refused: 3, Breaker: breakerState{Calls: 1, Remaining: 2}}},
		{"the breaker open creates nothing", poolInput{Min: 1, Max: 10, Desired: 2, PerHour: 2, Creations: recent(2)},
			poolPlan{Desired: 2, Refused: 2, Breaker: breakerState{Calls: 2, Open: true, Until: poolAgo(time.Minute).Add(time.Hour)}}},
		{"past the boot deadline: destroyed and replaced", poolInput{Min: 1, Max: 2, PerHour: 10, BootDeadline: 5 * time.Minute, Now: poolNow, Servers: []store.PoolServer{
			srv("a", store.ServerBooting, "1", 6*time.Minute)}},
			poolPlan{Desired: 1, Create: 1, Destroy: []string{"a"}}},
		{"past the deadline but being brought up: its goroutine decides", poolInput{Min: 1, Max: 2, PerHour: 10, BootDeadline: 5 * time.Minute, Busy: map[string]bool{"a": true}, Servers: []store.PoolServer{
			srv("a", store.ServerEnrolling, "1", 6*time.Minute)}},
			poolPlan{Desired: 1, Active: 1}},
		{"a lost create (no id, no call under way) is not counted: replaced, left to the orphan pass", poolInput{Min: 1, Max: 2, PerHour: 10, BootDeadline: 5 * time.Minute, Servers: []store.PoolServer{
			srv("a", store.ServerCreating, "", 6*time.Minute)}},
			poolPlan{Desired: 1, Create: 1}},
		{"a create call under way counts", poolInput{Min: 1, Max: 2, PerHour: 10, BootDeadline: 5 * time.Minute, Busy: map[string]bool{"a": true}, Servers: []store.PoolServer{
			srv("a", store.ServerCreating, "", 6*time.Minute)}},
			poolPlan{Desired: 1, Active: 1}},
		{"a ready server is never destroyed for the deadline", poolInput{Min: 1, Max: 2, PerHour: 10, BootDeadline: 5 * time.Minute, Servers: []store.PoolServer{
			srv("a", store.ServerReady, "1", 6*time.Hour)}},
			poolPlan{Desired: 1, Active: 1}},
		{"scale down: pending first, then the least loaded, newest", poolInput{Min: 1, Max: 5, Desired: 1, PerHour: 10, Busy: map[string]bool{"e": true},
			Replicas: map[string]int{"a": 3, "b": 1, "c": 1},
			Servers: []store.PoolServer{
				srv("a", store.ServerReady, "1", 3*time.Hour), srv("b", store.ServerReady, "2", 2*time.Hour), srv("c", store.ServerReady, "3", time.Hour),
				srv("d", store.ServerBooting, "4", time.Minute), srv("e", store.ServerCreating, "", time.Second)}},
			poolPlan{Desired: 1, Active: 5, Destroy: []string{"d"}, Retire: []string{"c", "b"}}},
		// A node holding an app pinned to it by its volumes cannot be
		// drained (the replica has nowhere else to go): retired, it
		// would stay cordoned and paid for for ever, out of the count.
		{"scale down: a node holding a pinned app is kept", poolInput{Min: 0, Max: 5, Desired: 1, PerHour: 10,
			Replicas: map[string]int{"a": 1, "b": 1, "c": 3}, Pinned: map[string]bool{"a": true},
			Servers: []store.PoolServer{
				srv("a", store.ServerReady, "1", time.Minute), srv("b", store.ServerReady, "2", 2*time.Hour), srv("c", store.ServerReady, "3", 3*time.Hour)}},
			poolPlan{Desired: 1, Active: 3, Retire: []string{"b", "c"}}},
		{"scale down: only pinned nodes left in excess: kept, said", poolInput{Min: 0, Max: 5, Desired: 0, PerHour: 10,
			Replicas: map[string]int{"a": 1}, Pinned: map[string]bool{"a": true},
			Servers: []store.PoolServer{srv("a", store.ServerReady, "1", time.Hour)}},
			poolPlan{Desired: 0, Active: 1, Kept: []string{"a"}}},
		{"scale down never below min", poolInput{Min: 2, Max: 5, Desired: 0, PerHour: 10, Servers: []store.PoolServer{
			srv("a", store.ServerReady, "1", time.Hour), srv("b", store.ServerReady, "2", time.Hour), srv("c", store.ServerReady, "3", time.Minute)}},
			poolPlan{Desired: 2, Active: 3, Retire: []string{"c"}}},
	} {
		c.in.Now = poolNow
		if c.want.Breaker == (breakerState{}) {
			c.want.Breaker.Remaining = c.in.PerHour
		}
		got := planPool(c.in)
		if diff := cmp.Diff(c.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: plan (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestOrphans(t *testing.T) {
	const cl = "abc123"
	lab := map[string]string{provider.LabelCluster: cl, provider.LabelPool: "p"}
	other := map[string]string{provider.LabelCluster: "elsewhere"}
	builder := map[string]string{provider.LabelCluster: cl, provider.LabelPool: "p", enroll.LabelRole: enroll.RoleBuilder}
	s := func(id, name string, labels map[string]string, age time.Duration) provider.Server {
		return provider.Server{ID: id, Name: name, Labels: labels, Created: poolAgo(age)}
	}
	known := []store.PoolServer{
		{Name: "p-known", ProviderID: "1", Created: poolAgo(time.Hour)},
		{Name: "p-lost", Created: poolAgo(time.Minute)},        // create answer lost
		{Name: "p-never", Created: poolAgo(time.Hour)},         // create call that made nothing
		{Name: "p-inflight", Created: poolAgo(time.Second)},    // under way
		{Name: "p-young-never", Created: poolAgo(time.Second)}, // within the grace
	}
	got := orphans(orphanInput{
		Cluster: cl, Known: known, Grace: 10 * time.Minute, Now: poolNow, Busy: map[string]bool{"p-inflight": true},
		Listed: []provider.Server{
			s("1", "p-known", lab, time.Hour),
			s("2", "p-lost", lab, time.Minute),
			s("3", "p-stray", lab, 11*time.Minute),
			s("4", "p-fresh", lab, time.Minute),
			s("5", "unlabelled", nil, 5*time.Hour),
			s("6", "theirs", other, 5*time.Hour),
			s("7", "p-known", lab, time.Hour), // a second server under a known name
			{ID: "8", Name: "p-nodate", Labels: lab},
			s("9", "moat-builder-p-abc", builder, time.Hour),    // moat pool image snapshotting
			s("10", "moat-builder-p-old", builder, 3*time.Hour), // its CLI died
		},
	})
	want := orphanPlan{
		Destroy: []provider.Server{s("3", "p-stray", lab, 11*time.Minute), s("7", "p-known", lab, time.Hour), s("10", "moat-builder-p-old", builder, 3*time.Hour)},
		Waiting: []provider.Server{s("4", "p-fresh", lab, time.Minute), {ID: "8", Name: "p-nodate", Labels: lab}, s("9", "moat-builder-p-abc", builder, time.Hour)},
		Adopt:   map[string]provider.Server{"p-lost": s("2", "p-lost", lab, time.Minute)},
		Forget:  []string{"p-never"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("orphans (-want +got):\n%s", diff)
	}
	// Without a cluster id nothing is anyone's.
	if p := orphans(orphanInput{Listed: []provider.Server{s("9", "x", nil, time.Hour)}, Now: poolNow}); len(p.Destroy) != 0 {
		t.Errorf("destroyed without a cluster id: %+v", p.Destroy)
	}
}
