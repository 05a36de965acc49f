package alert

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRandomWalk: snapshots that change at random, as untrusted node
// reports may (NaN, negative, future times), evaluated in turn: keys stay
// unique and sorted, an alert never fires twice without resolving in
// between, a firing alert keeps its since, and since is never after now.
func TestRandomWalk(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...float64) float64 { return xs[rnd.IntN(len(xs))] }
	states := []string{"up", "down", "connecting", "", "bogus"}
	cstates := []string{"running", "restarting", "exited", "created", ""}
	var prev []Alert
	firing := map[string]time.Time{}
	rules := map[string]bool{}
	now := t0
	for step := range 2000 {
		now = now.Add(time.Duration(rnd.IntN(5000)) * time.Millisecond)
		s := Snapshot{Now: now, Apps: []App{{Name: "web", Thresholds: Thresholds{MemoryPercent: rnd.IntN(101), Restarts: rnd.IntN(4)}}}}
		if rnd.IntN(3) == 0 {
			s.Apps[0].FailedRevision, s.Apps[0].FailedAt = 1+rnd.IntN(3), now.Add(time.Duration(rnd.IntN(20)-10)*time.Second)
		}
		for _, n := range []string{"n1", "n2"} {
			s.Nodes = append(s.Nodes, Node{Name: n, State: states[rnd.IntN(len(states))], Since: now.Add(-time.Duration(rnd.IntN(30)) * time.Second),
				DiskUsed: pick(80, 88, 92, math.NaN(), -1, math.Inf(1)), DiskTotal: pick(100, 0, math.NaN()), SampledAt: now.Add(time.Duration(rnd.IntN(300)-200) * time.Second)})
		}
		for _, id := range []string{"web-a", "web-b"} {
			r := Replica{ID: id, App: "web", Node: "n1", Known: rnd.IntN(4) > 0, State: cstates[rnd.IntN(len(cstates))], Restarts: rnd.IntN(10),
				Started: now.Add(-time.Duration(rnd.IntN(120)) * time.Second), Finished: now.Add(-time.Duration(rnd.IntN(120)-5) * time.Second),
				OOMKilled: rnd.IntN(2) == 0, Mem: pick(10, 86, 93, math.NaN()), MemLimit: pick(100, 0, -5), SampledAt: now.Add(-time.Duration(rnd.IntN(200)) * time.Second)}
			for range rnd.IntN(8) {
				r.RestartTimes = append(r.RestartTimes, now.Add(-time.Duration(rnd.IntN(7200)-100)*time.Second))
			}
			s.Replicas = append(s.Replicas, r)
		}
		if rnd.IntN(5) == 0 {
			s.Certs = []Cert{{Name: "web/tls", App: "web", NotAfter: now.Add(time.Duration(rnd.IntN(40)-5) * 24 * time.Hour)}}
		}
		next := Evaluate(s, prev)
		if !slices.IsSortedFunc(next, func(a, b Alert) int { return strings.Compare(a.Key, b.Key) }) {
			t.Fatalf("step %d: not sorted", step)
		}
		for i, a := range next {
			if i > 0 && next[i-1].Key == a.Key {
				t.Fatalf("step %d: %s twice", step, a.Key)
			}
			if a.Since.After(now) {
				t.Fatalf("step %d: %s since %s, after now %s", step, a.Key, a.Since, now)
			}
		}
		fired, resolved := Changes(prev, next)
		for _, a := range resolved {
			if _, ok := firing[a.Key]; !ok {
				t.Fatalf("step %d: %s resolved without firing", step, a.Key)
			}
			delete(firing, a.Key)
		}
		for _, a := range fired {
			if _, ok := firing[a.Key]; ok {
				t.Fatalf("step %d: %s fired twice", step, a.Key)
			}
			firing[a.Key] = a.Since
			rules[a.Rule] = true
		}
		for _, a := range next {
			if since, ok := firing[a.Key]; a.Firing && (!ok || !since.Equal(a.Since)) {
				t.Fatalf("step %d: %s firing with since %s, fired with %s", step, a.Key, a.Since, since)
			}
		}
		prev = next
	}
	if len(rules) != 8 {
		t.Errorf("the walk fired only %v: make it reach every rule", rules)
	}
}
