package alert

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// state is an alert's key and whether it fires, for comparing.
func state(as []Alert) map[string]bool {
	m := map[string]bool{}
	for _, a := range as {
		m[a.Key] = a.Firing
	}
	return m
}

// TestRules: each rule on a snapshot of its own, with no alerts before,
// and with the same alert firing before (what a value between the two
// thresholds keeps).
func TestRules(t *testing.T) {
	nan := math.NaN()
	now := at(time.Hour)
	rep := func(f func(*Replica)) Snapshot {
		r := Replica{ID: "web-a", App: "web", Node: "n1", Known: true, State: "running", Started: at(0), Mem: 10, MemLimit: 100, SampledAt: now}
		f(&r)
		return Snapshot{Now: now, Replicas: []Replica{r}, Apps: []App{{Name: "web"}}}
	}
	node := func(state string, since time.Time, used, total float64) Snapshot {
		return Snapshot{Now: now, Nodes: []Node{{Name: "n1", State: state, Since: since, DiskUsed: used, DiskTotal: total, SampledAt: now.Add(-5 * time.Second)}}}
	}
	mem := func(pct float64, threshold int) Snapshot {
		s := rep(func(r *Replica) { r.Mem, r.MemLimit, r.SampledAt = pct, 100, now.Add(-time.Second) })
		s.Apps[0].Thresholds.MemoryPercent = threshold
		return s
	}
	restartsAt := func(n int, threshold int) Snapshot {
		s := rep(func(r *Replica) {
			for i := range n {
				r.RestartTimes = append(r.RestartTimes, now.Add(-time.Duration(i+1)*time.Minute))
			}
		})
		s.Apps[0].Thresholds.Restarts = threshold
		return s
	}
	for _, tc := range []struct {
		name string
		s    Snapshot
		// fresh: the alerts with nothing before (key → firing); held:
		// the keys still there when they were firing before.
		fresh map[string]bool
		held  []string
	}{
		{"node up", node("up", at(0), 10, 100), map[string]bool{}, nil},
		{"node down", node("down", now.Add(-time.Second), 10, 100), map[string]bool{"node-down/n1": true}, []string{"node-down/n1"}},
		{"node reconnecting", node("connecting", now.Add(-time.Second), 10, 100), map[string]bool{}, []string{"node-down/n1"}},
		{"node just back", node("up", now.Add(-5*time.Second), 10, 100), map[string]bool{}, []string{"node-down/n1"}},
		{"node not watched yet", node("", now, 10, 100), map[string]bool{}, []string{"node-down/n1"}},
		{"node back a while", node("up", now.Add(-NodeUpClear), 10, 100), map[string]bool{}, nil},

		{"disk 95%", node("up", at(0), 95, 100), map[string]bool{"disk-full/n1": true}, []string{"disk-full/n1"}},
		{"disk 90%", node("up", at(0), 90, 100), map[string]bool{}, []string{"disk-full/n1"}},
		{"disk 86%", node("up", at(0), 86, 100), map[string]bool{}, []string{"disk-full/n1"}},
		{"disk 85%", node("up", at(0), 85, 100), map[string]bool{}, nil},
		{"disk unknown size", node("up", at(0), 95, 0), map[string]bool{}, nil},
		{"disk stale sample", func() Snapshot {
			s := node("up", at(0), 99, 100)
			s.Nodes[0].SampledAt = now.Add(-StaleSample - time.Second)
			return s
		}(), map[string]bool{}, []string{"disk-full/n1"}},

		// Memory must last MemoryFor before it fires: pending first.
		{"memory 95%", mem(95, 0), map[string]bool{"memory-near-limit/web-a": false}, []string{"memory-near-limit/web-a"}},
		{"memory 88%", mem(88, 0), map[string]bool{}, []string{"memory-near-limit/web-a"}},
		{"memory 85%", mem(85, 0), map[string]bool{}, nil},
		{"memory 85% of app threshold 80", mem(85, 80), map[string]bool{"memory-near-limit/web-a": false}, []string{"memory-near-limit/web-a"}},
		{"memory 76% of app threshold 80", mem(76, 80), map[string]bool{}, []string{"memory-near-limit/web-a"}},
		{"memory no limit", rep(func(r *Replica) { r.Mem, r.MemLimit, r.SampledAt = 100, 0, now }), map[string]bool{}, nil},
		{"memory not sampled", rep(func(r *Replica) { r.Mem = nan }), map[string]bool{}, []string{"memory-near-limit/web-a"}},
		// A replica whose node is unreachable: every alert of its stays.
		{"replica not known", rep(func(r *Replica) { r.Known = false }), map[string]bool{},
			[]string{"crash-loop/web-a", "memory-near-limit/web-a", "oom-kill/web-a", "restarts/web-a"}},

		{"crash loop", rep(func(r *Replica) {
			r.State, r.Restarts, r.Started, r.Finished = "restarting", 3, now.Add(-2*time.Second), now.Add(-time.Second)
		}), map[string]bool{"crash-loop/web-a": true}, []string{"crash-loop/web-a"}},
		{"two quick restarts", rep(func(r *Replica) {
			r.State, r.Restarts, r.Started, r.Finished = "restarting", 2, now.Add(-2*time.Second), now.Add(-time.Second)
		}), map[string]bool{}, nil},
		{"crash loop, running again briefly", rep(func(r *Replica) {
			r.State, r.Restarts, r.Started, r.Finished = "running", 4, now.Add(-time.Second), now.Add(-2*time.Second)
		}), map[string]bool{}, []string{"crash-loop/web-a"}},
		{"crash loop over: a long run", rep(func(r *Replica) {
			r.State, r.Restarts, r.Started, r.Finished = "running", 4, now.Add(-CrashLoopClear), now.Add(-2*time.Minute)
		}), map[string]bool{}, nil},
		{"restarting after a long run", rep(func(r *Replica) {
			r.State, r.Restarts, r.Started, r.Finished = "restarting", 4, now.Add(-time.Hour), now.Add(-time.Second)
		}), map[string]bool{}, []string{"crash-loop/web-a"}},

		{"5 restarts in the hour", restartsAt(5, 0), map[string]bool{"restarts/web-a": true}, []string{"restarts/web-a"}},
		{"4 restarts in the hour", restartsAt(4, 0), map[string]bool{}, []string{"restarts/web-a"}},
		{"2 restarts in the hour", restartsAt(2, 0), map[string]bool{}, nil},
		{"2 restarts, app threshold 2", restartsAt(2, 2), map[string]bool{"restarts/web-a": true}, []string{"restarts/web-a"}},
		{"restarts older than the hour", rep(func(r *Replica) {
			r.RestartTimes = []time.Time{at(-5 * time.Second), at(-4 * time.Second), at(-3 * time.Second), at(-2 * time.Second), at(0)}
		}), map[string]bool{}, nil},

		{"oom kill", rep(func(r *Replica) { r.OOMKilled, r.Finished = true, now.Add(-time.Minute) }), map[string]bool{"oom-kill/web-a": true}, []string{"oom-kill/web-a"}},
		{"old oom kill", rep(func(r *Replica) { r.OOMKilled, r.Finished = true, now.Add(-OOMWindow) }), map[string]bool{}, nil},

		{"failed deploy", Snapshot{Now: now, Apps: []App{{Name: "web", FailedRevision: 4, RolledBackTo: 3, FailedAt: now}}},
			map[string]bool{"failed-deploy/web": true}, []string{"failed-deploy/web"}},
		{"good deploy", Snapshot{Now: now, Apps: []App{{Name: "web"}}}, map[string]bool{}, nil},

		{"cert in 10 days", Snapshot{Now: now, Certs: []Cert{{Name: "web/tls", NotAfter: now.Add(240 * time.Hour)}}},
			map[string]bool{"cert-expiring/web/tls": true}, []string{"cert-expiring/web/tls"}},
		{"cert in 14.5 days", Snapshot{Now: now, Certs: []Cert{{Name: "web/tls", NotAfter: now.Add(348 * time.Hour)}}},
			map[string]bool{}, []string{"cert-expiring/web/tls"}},
		{"cert renewed", Snapshot{Now: now, Certs: []Cert{{Name: "web/tls", NotAfter: now.Add(90 * 24 * time.Hour)}}}, map[string]bool{}, nil},
		{"cert expired", Snapshot{Now: now, Certs: []Cert{{Name: "web/tls", NotAfter: now.Add(-time.Hour)}}},
			map[string]bool{"cert-expiring/web/tls": true}, []string{"cert-expiring/web/tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Evaluate(tc.s, nil)
			if diff := cmp.Diff(tc.fresh, state(got)); diff != "" {
				t.Errorf("nothing before (-want +got):\n%s", diff)
			}
			for _, a := range got {
				if a.Summary == "" || !strings.HasPrefix(a.Key, a.Rule+"/") || a.Since.IsZero() {
					t.Errorf("alert %+v: want a summary, a key under its rule and a since", a)
				}
			}
			// The same alerts, firing before: which stay.
			var prev []Alert
			for _, k := range []string{"node-down/n1", "disk-full/n1", "memory-near-limit/web-a", "crash-loop/web-a", "restarts/web-a", "oom-kill/web-a", "failed-deploy/web", "cert-expiring/web/tls"} {
				prev = append(prev, Alert{Key: k, Rule: strings.Split(k, "/")[0], Firing: true, Since: at(0)})
			}
			var kept []string
			for _, a := range Evaluate(tc.s, prev) {
				kept = append(kept, a.Key)
				if !a.Firing || !a.Since.Equal(at(0)) {
					t.Errorf("%s: a firing alert kept must stay firing with its since: %+v", a.Key, a)
				}
			}
			if diff := cmp.Diff(tc.held, kept); diff != "" {
				t.Errorf("firing before (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHysteresis: memory hovering around the threshold fires once and
// resolves once, and a pending alert that dips is not fired.
func TestHysteresis(t *testing.T) {
	var prev []Alert
	var notices []string
	step := func(i int, pct float64) {
		now := at(time.Duration(i) * 5 * time.Second)
		s := Snapshot{Now: now, Apps: []App{{Name: "web"}},
			Replicas: []Replica{{ID: "web-a", App: "web", Node: "n1", Known: true, State: "running", Mem: pct, MemLimit: 100, SampledAt: now}}}
		next := Evaluate(s, prev)
		fired, resolved := Changes(prev, next)
		for _, a := range fired {
			notices = append(notices, "fired "+a.Key)
		}
		for _, a := range resolved {
			notices = append(notices, "resolved "+a.Key)
		}
		prev = next
	}
	// Pending at 91, dips to 89 (dropped), 91 again, 92, 93 (held for
	// MemoryFor: fires), then hovers 89-91 (held), then 80 (resolved).
	for i, pct := range []float64{91, 89, 91, 92, 93, 89, 91, 89.5, 90.5, 86, 91, 80, 82} {
		step(i, pct)
	}
	want := []string{"fired memory-near-limit/web-a", "resolved memory-near-limit/web-a"}
	if diff := cmp.Diff(want, notices); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
}

// TestEvaluateKeepsSince: an alert keeps the time its condition began
// across evaluations; a pending one fires after its rule's For.
func TestEvaluateKeepsSince(t *testing.T) {
	s := func(now time.Time) Snapshot {
		return Snapshot{Now: now, Apps: []App{{Name: "web"}},
			Replicas: []Replica{{ID: "web-a", App: "web", Known: true, Mem: 99, MemLimit: 100, SampledAt: now}}}
	}
	a := Evaluate(s(at(0)), nil)
	if len(a) != 1 || a[0].Firing || !a[0].Since.Equal(at(0)) {
		t.Fatalf("first: %+v", a)
	}
	a = Evaluate(s(at(MemoryFor-time.Second)), a)
	if len(a) != 1 || a[0].Firing {
		t.Fatalf("before MemoryFor: %+v", a)
	}
	a = Evaluate(s(at(MemoryFor)), a)
	if len(a) != 1 || !a[0].Firing || !a[0].Since.Equal(at(0)) || a[0].Value != 99 {
		t.Fatalf("after MemoryFor: %+v", a)
	}
	fired, resolved := Changes(nil, a)
	if len(fired) != 1 || len(resolved) != 0 {
		t.Errorf("changes: %v %v", fired, resolved)
	}
	if fired, resolved := Changes(a, nil); len(fired) != 0 || len(resolved) != 1 {
		t.Errorf("gone: %v %v", fired, resolved)
	}
}

// TestTrackRestarts: increases of the count are dated when seen, first
// sight is not news, old ones age out, gone replicas are forgotten.
func TestTrackRestarts(t *testing.T) {
	r := func(id string, n int) Replica { return Replica{ID: id, Restarts: n} }
	h := TrackRestarts(nil, []Replica{r("a", 7), r("b", 0)}, at(0))
	if len(h["a"].Times) != 0 || h["a"].Count != 7 {
		t.Fatalf("first sight: %+v", h)
	}
	h = TrackRestarts(h, []Replica{r("a", 9), r("b", 1)}, at(time.Minute))
	if len(h["a"].Times) != 2 || len(h["b"].Times) != 1 {
		t.Fatalf("after increases: %+v", h)
	}
	h = TrackRestarts(h, []Replica{r("a", 9)}, at(time.Minute+RestartsWindow))
	if len(h["a"].Times) != 0 || len(h) != 1 {
		t.Fatalf("an hour later, b gone: %+v", h)
	}
}
