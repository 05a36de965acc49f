// Package appscale decides an autoscaled app's replica count from its
// load, as Kubernetes' Horizontal Pod Autoscaler does (its v2 algorithm
// with the default behaviour): pure, so every case is a table test; the
// master's loop (internal/master/appscale.go) gathers the samples, calls
// Decide every period and applies what it says.
//
// The rules, and where they differ from HPA's:
//   - Per metric, desired = ceil(replicas × observed / target): for cpu,
//     over the replicas that report a sample, observed being their mean
//     use as a share of their CPU; for rps, desired = ceil(total
//     requests/s / target per replica). With both, the larger wins.
//   - Tolerance: a ratio observed/target within ±10 % changes nothing.
//   - Replicas without a fresh sample (just started, their node silent)
//     and replicas not ready are counted conservatively, as HPA does: when
//     the others say scale up, they count as using nothing (a replica just
//     started must not make the app grow twice for the same load); when
//     the others say scale down, a missing one counts as exactly at its
//     target (so silence never shrinks the app) and an unready one is left
//     out. If counting them so flips the direction or lands within the
//     tolerance, nothing changes.
//   - Scale-up is immediate; scale-down only to the highest recommendation
//     of the stabilisation window (5 minutes), so a dip in load does not
//     remove replicas that the next burst needs.
//   - The result is clamped to min..max. There is no scale-up rate limit
//     (HPA's default allows doubling or +4 per 15 s): the issue asks for
//     a 5× step to be answered in one decision.
//   - Every call returns a Reason, for moat autoscaler status: why the
//     count changes, or why it does not.
package appscale

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Defaults.
const (
	DefaultPeriod    = 15 * time.Second
	DefaultWindow    = 5 * time.Minute
	DefaultTolerance = 0.1
)

// Target is an app's autoscale section (spec.Autoscale), with cpu as a
// fraction (0.7 for 70 %).
type Target struct {
	Min, Max int
	CPU      float64 // share of each replica's CPU to aim for; 0: not a target
	RPS      float64 // requests per second per replica; 0: not a target
}

// Replica is one of the app's replicas as the master sees it now.
type Replica struct {
	ID    string
	Ready bool
	// CPU is its CPU use as a share of what it reserves (cores used /
	// resources.cpu); NaN when no fresh sample says.
	CPU float64
}

// Input is what one decision sees.
type Input struct {
	Now      time.Time
	Current  int       // the replica count the app has now (its spec)
	Replicas []Replica // the replicas that exist
	// RPS is the app's requests per second over its routes, summed over
	// the edges; NaN when unknown (no fresh edge sample).
	RPS       float64
	Tolerance float64       // 0: DefaultTolerance
	Window    time.Duration // scale-down stabilisation; 0: DefaultWindow
}

// Recommendation is a count recommended (before stabilisation) at a time;
// the caller keeps those of the last window (Keep).
type Recommendation struct {
	At       time.Time
	Replicas int
}

// Observed is one metric's part in a decision.
type Observed struct {
	Name     string  `json:"name"`     // "cpu" or "rps"
	Value    float64 `json:"value"`    // cpu: the mean share (0.85); rps: the total per second
	Target   float64 `json:"target"`   // cpu: the share; rps: per replica
	Replicas int     `json:"replicas"` // replicas with a sample (cpu), or the count it is divided by (rps)
	Desired  int     `json:"desired"`  // what this metric alone recommends; -1: none (no data)
	Reason   string  `json:"reason"`
}

// Decision is what Decide says.
type Decision struct {
	Desired     int        // the count to have: Current when nothing changes
	Recommended int        // the metrics' recommendation before stabilisation and bounds; keep it (Keep)
	Metrics     []Observed // each metric's part
	Reason      string     // one line: why Desired is what it is
}

// Changed reports whether the decision changes the count.
func (d Decision) Changed(current int) bool { return d.Desired != current }

// Decide is one decision: the metrics' recommendation, stabilised against
// past (the recommendations of the last window, oldest first, as Keep
// leaves them) and clamped to the target's bounds.
func Decide(t Target, in Input, past []Recommendation) Decision {
	tol := in.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	window := in.Window
	if window <= 0 {
		window = DefaultWindow
	}
	var d Decision
	rec, have := -1, false
	if t.CPU > 0 {
		o := cpuReplicas(t.CPU, in.Current, in.Replicas, tol)
		d.Metrics = append(d.Metrics, o)
		if o.Desired >= 0 {
			rec, have = max(rec, o.Desired), true
		}
	}
	if t.RPS > 0 {
		o := rpsReplicas(t.RPS, in.Current, in.RPS, tol)
		d.Metrics = append(d.Metrics, o)
		if o.Desired >= 0 {
			rec, have = max(rec, o.Desired), true
		}
	}
	var why []string
	for _, o := range d.Metrics {
		why = append(why, o.Reason)
	}
	if !have {
		rec = in.Current
	}
	d.Recommended = rec
	desired := rec
	// Scale-down stabilisation: no lower than the highest recommendation
	// of the window (this one included).
	if rec < in.Current {
		high := rec
		for _, p := range past {
			if in.Now.Sub(p.At) < window && p.Replicas > high {
				high = p.Replicas
			}
		}
		desired = min(in.Current, high)
		if desired > rec {
			why = append(why, fmt.Sprintf("scale-down held at %d: the highest recommendation of the last %s", desired, short(window)))
		}
	}
	switch {
	case desired > t.Max:
		why = append(why, fmt.Sprintf("capped at max %d", t.Max))
		desired = t.Max
	case desired < t.Min:
		why = append(why, fmt.Sprintf("raised to min %d", t.Min))
		desired = t.Min
	}
	d.Desired = desired
	switch {
	case !have:
		why = append(why, fmt.Sprintf("no samples: keeping %d", desired))
	case desired > in.Current:
		why = append(why, fmt.Sprintf("scale up %d → %d", in.Current, desired))
	case desired < in.Current:
		why = append(why, fmt.Sprintf("scale down %d → %d", in.Current, desired))
	default:
		why = append(why, fmt.Sprintf("keeping %d", desired))
	}
	d.Reason = strings.Join(why, "; ")
	return d
}

// Keep returns past with rec added and what is older than the window
// dropped: what the next Decide needs.
func Keep(past []Recommendation, rec Recommendation, window time.Duration) []Recommendation {
	if window <= 0 {
		window = DefaultWindow
	}
	out := past[:0:0]
	for _, p := range past {
		if rec.At.Sub(p.At) < window {
			out = append(out, p)
		}
	}
	return append(out, rec)
}

// cpuReplicas is HPA's GetResourceReplicas over utilisation shares.
func cpuReplicas(target float64, current int, reps []Replica, tol float64) Observed {
	o := Observed{Name: "cpu", Target: target, Desired: -1}
	var sum float64
	var missing, unready int
	for _, r := range reps {
		switch {
		case !r.Ready:
			unready++
		case math.IsNaN(r.CPU) || math.IsInf(r.CPU, 0) || r.CPU < 0:
			missing++
		default:
			sum += r.CPU
			o.Replicas++
		}
	}
	if o.Replicas == 0 {
		o.Reason = fmt.Sprintf("cpu: no sample yet from the %d replicas (%d not ready)", len(reps), unready)
		return o
	}
	o.Value = sum / float64(o.Replicas)
	ratio := o.Value / target
	what := fmt.Sprintf("cpu %s of %s over %d replicas", pct(o.Value), pct(target), o.Replicas)
	up := ratio > 1
	countUnready := unready > 0 && up
	if !countUnready && missing == 0 {
		if math.Abs(1-ratio) <= tol {
			o.Desired = current
			o.Reason = what + fmt.Sprintf(": within %s of the target", pct(tol))
			return o
		}
		o.Desired = ceil(ratio * float64(o.Replicas))
		o.Reason = what + fmt.Sprintf(": %d", o.Desired)
		return o
	}
	// Count the others conservatively, then check the direction holds.
	n := o.Replicas + missing
	if !up {
		sum += float64(missing) * target // silence is not idleness
	}
	if countUnready {
		n += unready // at 0: starting replicas will take load
	}
	newRatio := sum / float64(n) / target
	what += fmt.Sprintf(" (%d without a sample, %d not ready, counted as %s: %s over %d)", missing, unready, map[bool]string{true: "idle", false: "at target"}[up], pct(newRatio*target), n)
	if math.Abs(1-newRatio) <= tol || up != (newRatio > 1) {
		o.Desired = current
		o.Reason = what + ": no change"
		return o
	}
	o.Desired = ceil(newRatio * float64(n))
	if up && o.Desired < current || !up && o.Desired > current {
		o.Desired = current
	}
	o.Reason = what + fmt.Sprintf(": %d", o.Desired)
	return o
}

// rpsReplicas is HPA's per-pod average of an object metric: the app's
// total rate divided by the target per replica.
func rpsReplicas(target float64, current int, total float64, tol float64) Observed {
	o := Observed{Name: "rps", Target: target, Value: total, Replicas: current, Desired: -1}
	if math.IsNaN(total) || math.IsInf(total, 0) || total < 0 {
		o.Value = 0
		o.Reason = "rps: no fresh sample from an edge"
		return o
	}
	what := fmt.Sprintf("rps %.3g over %d replicas (%.3g each) for %.3g each", total, current, total/float64(max(current, 1)), target)
	if current > 0 && math.Abs(1-total/(target*float64(current))) <= tol {
		o.Desired = current
		o.Reason = what + fmt.Sprintf(": within %s of the target", pct(tol))
		return o
	}
	o.Desired = ceil(total / target)
	o.Reason = what + fmt.Sprintf(": %d", o.Desired)
	return o
}

// ceil rounds up, forgiving float error (1.2 × 5 is 6, not 7).
func ceil(x float64) int {
	const most = 1 << 30
	if x > most {
		return most
	}
	return int(math.Ceil(x - 1e-9))
}

func pct(f float64) string {
	return fmt.Sprintf("%.0f%%", f*100)
}

func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Status is where one autoscaled app stands: its last decision, for moat
// autoscaler status.
type Status struct {
	App       string     `json:"app"` // the app's key in the master's store
	Min       int        `json:"min"`
	Max       int        `json:"max"`
	Current   int        `json:"current"` // the count when it decided
	Desired   int        `json:"desired"`
	Metrics   []Observed `json:"metrics,omitempty"`
	Decided   time.Time  `json:"decided"`
	Reason    string     `json:"reason"`
	Changed   bool       `json:"changed"`            // this decision changed the count
	LastScale time.Time  `json:"lastScale,omitzero"` // when it last changed the count
}
