package appscale

import (
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)

// reps makes replicas from CPU shares: NaN is no sample, a negative
// value a replica not ready.
func reps(cpu ...float64) []Replica {
	out := make([]Replica, len(cpu))
	for i, c := range cpu {
		out[i] = Replica{ID: string(rune('a' + i)), Ready: c >= 0 || math.IsNaN(c), CPU: c}
		if c < 0 {
			out[i].CPU = math.NaN()
		}
	}
	return out
}

var nan = math.NaN()

// TestDecide: HPA's algorithm, case by case, with the reason given.
func TestDecide(t *testing.T) {
	cpu70 := Target{Min: 2, Max: 20, CPU: 0.7}
	rps10 := Target{Min: 1, Max: 10, RPS: 10}
	both := Target{Min: 2, Max: 20, CPU: 0.7, RPS: 10}
	for _, tc := range []struct {
		name    string
		t       Target
		in      Input
		past    []Recommendation
		want    int
		rec     int
		because string
	}{
		{"within tolerance above", cpu70, Input{Current: 2, Replicas: reps(0.76, 0.76)}, nil, 2, 2, "cpu 76% of 70% over 2 replicas: within 10% of the target; keeping 2"},
		{"within tolerance below", cpu70, Input{Current: 4, Replicas: reps(0.64, 0.64, 0.64, 0.64)}, nil, 4, 4, "within 10%"},
		{"just past tolerance", cpu70, Input{Current: 2, Replicas: reps(0.78, 0.78)}, nil, 3, 3, "cpu 78% of 70% over 2 replicas: 3; scale up 2 → 3"},
		{"5x step", cpu70, Input{Current: 2, Replicas: reps(0.7*5, 0.7*5)}, nil, 10, 10, "scale up 2 → 10"},
		{"exact ratio, no float error", Target{Min: 1, Max: 20, CPU: 0.5}, Input{Current: 5, Replicas: reps(0.6, 0.6, 0.6, 0.6, 0.6)}, nil, 6, 6, ": 6;"},
		{"capped at max", cpu70, Input{Current: 10, Replicas: reps(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)}, nil, 15, 15, ""},
		{"capped at max 20", cpu70, Input{Current: 15, Replicas: reps(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)}, nil, 20, 22, "capped at max 20; scale up 15 → 20"},
		{"idle: down to min when nothing in the window", cpu70, Input{Current: 6, Replicas: reps(0, 0, 0, 0, 0, 0)}, nil, 2, 0, "raised to min 2; scale down 6 → 2"},
		{"scale down held by the window", cpu70, Input{Now: t0, Current: 6, Replicas: reps(0.35, 0.35, 0.35, 0.35, 0.35, 0.35)},
			[]Recommendation{{t0.Add(-4 * time.Minute), 6}, {t0.Add(-time.Minute), 5}}, 6, 3, "scale-down held at 6: the highest recommendation of the last 5m; keeping 6"},
		{"scale down to the window's highest", cpu70, Input{Now: t0, Current: 6, Replicas: reps(0.35, 0.35, 0.35, 0.35, 0.35, 0.35)},
			[]Recommendation{{t0.Add(-6 * time.Minute), 6}, {t0.Add(-time.Minute), 4}}, 4, 3, "scale-down held at 4: the highest recommendation of the last 5m; scale down 6 → 4"},
		{"scale up ignores the window", cpu70, Input{Now: t0, Current: 2, Replicas: reps(1.4, 1.4)},
			[]Recommendation{{t0.Add(-time.Minute), 2}}, 4, 4, "scale up 2 → 4"},
		{"bounds changed: current above max", Target{Min: 1, Max: 3, CPU: 0.7}, Input{Current: 5, Replicas: reps(0.7, 0.7, 0.7, 0.7, 0.7)}, nil, 3, 5, "capped at max 3; scale down 5 → 3"},
		{"bounds changed: current below min", cpu70, Input{Current: 1, Replicas: reps(0.7)}, nil, 2, 1, "raised to min 2; scale up 1 → 2"},
		{"no samples at all", cpu70, Input{Current: 3, Replicas: reps(nan, nan, -1)}, nil, 3, 3, "cpu: no sample yet from the 3 replicas (1 not ready); no samples: keeping 3"},
		{"no replicas", cpu70, Input{Current: 3}, nil, 3, 3, "no samples: keeping 3"},
		// Up: the missing and unready count as idle.
		{"up, missing as idle", cpu70, Input{Current: 4, Replicas: reps(1.4, 1.4, nan, nan)}, nil, 4, 4, "(2 without a sample, 0 not ready, counted as idle: 70% over 4): no change"},
		{"up, missing as idle, still up", cpu70, Input{Current: 3, Replicas: reps(1.4, 1.4, nan)}, nil, 4, 4, "counted as idle: 93% over 3): 4"},
		{"up, unready as idle", cpu70, Input{Current: 4, Replicas: reps(1.4, 1.4, -1, -1)}, nil, 4, 4, "0 without a sample, 2 not ready, counted as idle: 70% over 4): no change"},
		{"up, unready as idle, still up", cpu70, Input{Current: 3, Replicas: reps(2.1, 2.1, -1)}, nil, 6, 6, "1 not ready, counted as idle: 140% over 3): 6"},
		// Down: missing at target, unready left out.
		{"down, missing at target", cpu70, Input{Current: 4, Replicas: reps(0.1, 0.1, nan, nan)}, nil, 3, 3, "counted as at target: 40% over 4): 3"},
		{"down, missing at target flips to none", cpu70, Input{Current: 4, Replicas: reps(0.6, nan, nan, nan)}, nil, 4, 4, "no change"},
		{"down, unready left out", cpu70, Input{Current: 4, Replicas: reps(0.35, 0.35, -1, -1)}, nil, 2, 1, "cpu 35% of 70% over 2 replicas: 1; raised to min 2; scale down 4 → 2"},
		// rps.
		{"rps up", rps10, Input{Current: 1, RPS: 45}, nil, 5, 5, "rps 45 over 1 replicas (45 each) for 10 each: 5; scale up 1 → 5"},
		{"rps within tolerance", rps10, Input{Current: 4, RPS: 42}, nil, 4, 4, "within 10%"},
		{"rps down", rps10, Input{Current: 4, RPS: 12}, nil, 2, 2, "scale down 4 → 2"},
		{"rps zero", rps10, Input{Current: 4, RPS: 0}, nil, 1, 0, "raised to min 1"},
		{"rps unknown", rps10, Input{Current: 4, RPS: nan}, nil, 4, 4, "rps: no fresh sample from an edge; no samples: keeping 4"},
		{"rps capped", rps10, Input{Current: 4, RPS: 1e6}, nil, 10, 100000, "capped at max 10"},
		// Both: the larger wins; one without data does not stop the other.
		{"both, rps wins", both, Input{Current: 2, Replicas: reps(0.7, 0.7), RPS: 60}, nil, 6, 6, "within 10% of the target; rps 60"},
		{"both, cpu wins", both, Input{Current: 2, Replicas: reps(2.1, 2.1), RPS: 5}, nil, 6, 6, "scale up 2 → 6"},
		{"both, rps unknown", both, Input{Current: 2, Replicas: reps(1.4, 1.4), RPS: nan}, nil, 4, 4, "rps: no fresh sample"},
		{"both idle", both, Input{Current: 5, Replicas: reps(0, 0, 0, 0, 0), RPS: 0}, nil, 2, 0, "scale down 5 → 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.t, tc.in, tc.past)
			if d.Desired != tc.want || d.Recommended != tc.rec {
				t.Errorf("desired %d, recommended %d; want %d, %d (%s)", d.Desired, d.Recommended, tc.want, tc.rec, d.Reason)
			}
			if !strings.Contains(d.Reason, tc.because) {
				t.Errorf("reason %q, want it to say %q", d.Reason, tc.because)
			}
			if d.Changed(tc.in.Current) != (tc.want != tc.in.Current) {
				t.Errorf("Changed %v", d.Changed(tc.in.Current))
			}
		})
	}
}

// TestStabilisation: a load that drops is followed down only once the
// window has passed since the last higher recommendation; rises are
// followed at once.
func TestStabilisation(t *testing.T) {
	target := Target{Min: 2, Max: 20, CPU: 0.5}
	window := time.Minute
	period := 15 * time.Second
	cur := 2
	var past []Recommendation
	load := func(at time.Duration) float64 { // cores the app needs
		switch {
		case at < time.Minute:
			return 1
		case at < 2*time.Minute:
			return 5 // step ×5
		default:
			return 1 // back
		}
	}
	var trace []string
	upAt, downAt := time.Duration(-1), time.Duration(-1)
	for at := time.Duration(0); at <= 5*time.Minute; at += period {
		share := load(at) / float64(cur)
		rs := make([]Replica, cur)
		for i := range rs {
			rs[i] = Replica{Ready: true, CPU: share}
		}
		in := Input{Now: t0.Add(at), Current: cur, Replicas: rs, Window: window}
		d := Decide(target, in, past)
		past = Keep(past, Recommendation{in.Now, d.Recommended}, window)
		if len(past) > int(window/period)+1 {
			t.Fatalf("Keep kept %d recommendations for a %s window", len(past), window)
		}
		if d.Desired > cur && upAt < 0 {
			upAt = at
		}
		if d.Desired < cur && downAt < 0 {
			downAt = at
		}
		trace = append(trace, d.Reason)
		cur = d.Desired
	}
	if upAt != time.Minute {
		t.Errorf("scaled up at %s, want at once (1m)\n%s", upAt, strings.Join(trace, "\n"))
	}
	// The load drops at 2m; the last high recommendation is the one at
	// 1m45s, so a drop is allowed from 2m45s.
	if downAt != 2*time.Minute+45*time.Second {
		t.Errorf("scaled down at %s, want 2m45s\n%s", downAt, strings.Join(trace, "\n"))
	}
	if cur != 2 {
		t.Errorf("ended at %d replicas, want 2", cur)
	}
}
