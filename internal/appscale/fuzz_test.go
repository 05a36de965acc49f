package appscale

import (
	"math"
	"testing"
	"time"
)

// FuzzDecide: whatever the samples say (they come from nodes: NaN, Inf,
// negative, huge), Decide never panics, keeps min..max and gives a
// reason.
func FuzzDecide(f *testing.F) {
	f.Add(2, 20, 0.7, 50.0, 4, 0.9, 1.5, math.NaN(), 120.0, false)
	f.Add(1, 1, 0.05, 0.0, 0, 0.0, 0.0, 0.0, 0.0, true)
	f.Add(3, 1000, 0.95, 1e6, 1000, math.Inf(1), -1.0, 1e300, math.Inf(1), false)
	f.Fuzz(func(t *testing.T, lo, hi int, cpu, rps float64, current int, a, b, c, total float64, unready bool) {
		lo, hi = max(1, lo%1001), max(1, hi%1001)
		if hi < lo {
			lo, hi = hi, lo
		}
		current = max(0, current%2000)
		tg := Target{Min: lo, Max: hi, CPU: cpu, RPS: rps}
		in := Input{Now: t0, Current: current, RPS: total,
			Replicas: []Replica{{Ready: true, CPU: a}, {Ready: !unready, CPU: b}, {Ready: true, CPU: c}}}
		past := []Recommendation{{t0.Add(-time.Minute), current + 1}}
		d := Decide(tg, in, past)
		if d.Desired < lo || d.Desired > hi || d.Reason == "" {
			t.Fatalf("Decide(%+v, %+v) = %+v", tg, in, d)
		}
	})
}
