package archive

import (
	"fmt"
	"math"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/metrics/rrd"
)

// History defaults and bounds.
const (
	DefaultPoints = 600
	MaxPoints     = 20000
	DefaultSpan   = 24 * time.Hour
)

// History reads one entity's fields, consolidated to at most q.Points
// points of at least q.Step each. It reads the coarsest archive whose
// step is not above the step asked (the larger of q.Step and the range
// over q.Points) among those reaching back to q.Since, else the finest
// that reaches back, else the coarsest; then merges k of its steps into
// one point when it still has too many or too fine (avg weighted by
// count, min of mins, max of maxes, aligned to k steps), so a year in 600
// points is 600 points of 15 h. An app's "replicas" field is its replica
// samples per finest step (one per replica when they are sampled at
// that step, 10 s by default).
func (s *Store) History(q masterapi.MetricsQuery) (masterapi.Metrics, error) {
	var m masterapi.Metrics
	kind, err := storeKind(q.Kind)
	if err != nil {
		return m, err
	}
	if !validName(q.Name) {
		return m, errs.Invalid("name", "%q is not a valid name", q.Name)
	}
	if q.Until.IsZero() {
		q.Until = s.o.Now()
	}
	if q.Since.IsZero() {
		q.Since = q.Until.Add(-DefaultSpan)
	}
	switch {
	case q.Since.After(q.Until):
		return m, errs.Invalid("since", "%s is after until %s", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	case q.Step < 0:
		return m, errs.Invalid("step", "%v is negative", q.Step)
	case q.Points < 0 || q.Points > MaxPoints:
		return m, errs.Invalid("points", "%d is not in 0..%d", q.Points, MaxPoints)
	case q.Points == 0:
		q.Points = DefaultPoints
	}
	var t *table
	for t == nil {
		var err error
		if t, err = s.table(key{kind, q.Name}, false); err != nil {
			return m, err
		}
		if t == nil {
			return m, fmt.Errorf("metrics of %s %q: %w", q.Kind, q.Name, errs.ErrNotFound)
		}
		t.mu.RLock()
		if t.b == nil {
			evicted := t.evicted
			t.mu.RUnlock()
			if !evicted {
				return m, fmt.Errorf("metrics of %s %q: %w", q.Kind, q.Name, errs.ErrNotFound)
			}
			t = nil
		}
	}
	defer t.mu.RUnlock()
	q.Since, q.Until = clampRange(q.Since, q.Until, s.o.Now(), t.h.spec)
	err = t.guard(func() { m = t.history(kind, q) })
	return m, err
}

// clampRange bounds a range asked for to what an archive of spec can
// hold: since no earlier than the longest archive's span before until,
// and until within a span of now (two before it: a clock set back keeps
// what was sampled before), so both stay where UnixNano holds them. Any
// caller may ask, and a range of centuries (1678 to 2262, or times past
// what UnixNano holds, which wrap) read every step of the coarsest
// archive in it: most of a second of CPU a request, or far more. Pure.
func clampRange(since, until, now time.Time, spec rrd.Spec) (time.Time, time.Time) {
	var span time.Duration
	for _, a := range spec {
		span = max(span, a.Step*time.Duration(a.Rows+1))
	}
	if lim := now.Add(span); until.After(lim) {
		until = lim
	}
	if lim := now.Add(-2 * span); until.Before(lim) {
		until = lim
	}
	if lim := until.Add(-span); since.Before(lim) {
		since = lim
	}
	if since.After(until) {
		since = until
	}
	return since, until
}

// history reads q from the table (mapped, its lock held).
func (t *table) history(kind byte, q masterapi.MetricsQuery) masterapi.Metrics {
	from, to := q.Since.UnixNano(), q.Until.UnixNano()
	want := max(int64(q.Step), (to-from)/int64(q.Points))
	i := t.choose(from, want)
	step := int64(t.h.spec[i].Step)
	k := max(1, want/step)
	for floorDiv(to, k*step)-floorDiv(from, k*step)+1 > int64(q.Points) {
		k++
	}
	b1 := floorDiv(to, k*step)
	b0 := floorDiv(from, k*step)
	n := b1 - b0 + 1
	if n <= 0 { // an overflow at the ends of int64
		n, b0 = 1, b1
	}
	return t.read(kind, q, i, k, b0, n)
}

// read merges k steps of archive i per point, for n points from block b0.
func (t *table) read(kind byte, q masterapi.MetricsQuery, i int, k, b0, n int64) masterapi.Metrics {
	step := int64(t.h.spec[i].Step)
	fields := fieldsOf(kind)
	m := masterapi.Metrics{Kind: q.Kind, Name: q.Name, Step: time.Duration(k * step).Seconds(), Fields: fields, Times: make([]int64, n)}
	m.Avg, m.Min, m.Max = make([][]masterapi.Value, len(fields)), make([][]masterapi.Value, len(fields)), make([][]masterapi.Value, len(fields))
	for f := range fields {
		m.Avg[f], m.Min[f], m.Max[f] = make([]masterapi.Value, n), make([]masterapi.Value, n), make([]masterapi.Value, n)
	}
	perFinest := float64(t.h.spec[0].Step) / float64(k*step)
	for j := range n {
		first := (b0 + j) * k
		m.Times[j] = floorDiv(first*step, int64(time.Second))
		for f := range fields {
			sum, lo, hi, c := 0.0, math.Inf(1), math.Inf(-1), 0
			for kk := first; kk < first+k; kk++ {
				avg, mn, mx, cn := t.cell(i, kk, f)
				if cn == 0 {
					continue
				}
				sum += avg * float64(cn)
				lo, hi, c = min(lo, mn), max(hi, mx), c+cn
			}
			avg := math.NaN()
			if c == 0 {
				lo, hi = math.NaN(), math.NaN()
			} else if kind == kindApp && f == len(fields)-1 {
				avg = float64(c) * perFinest
				lo, hi = avg, avg
			} else {
				avg = sum / float64(c)
			}
			m.Avg[f][j], m.Min[f][j], m.Max[f][j] = masterapi.Value(avg), masterapi.Value(lo), masterapi.Value(hi)
		}
	}
	return m
}

// choose picks the coarsest archive whose step is not above want among
// those that reach back to from; else the finest that reaches back; else
// the coarsest.
func (t *table) choose(from, want int64) int {
	pick := -1
	for i, a := range t.h.spec {
		if !t.reaches(i, a, from) {
			continue
		}
		if int64(a.Step) <= want || pick < 0 {
			pick = i
		}
		if int64(a.Step) >= want {
			break
		}
	}
	if pick < 0 {
		return len(t.h.spec) - 1
	}
	return pick
}

// reaches: from's step is still in archive i's ring (an empty table
// reaches nothing back, so it is read from its finest archive).
func (t *table) reaches(i int, a rrd.Archive, from int64) bool {
	return t.newest() == 0 || floorDiv(from, int64(a.Step)) > t.last(i)-int64(a.Rows)
}

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
