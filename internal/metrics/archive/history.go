package archive

import (
	"fmt"
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

// History reads one entity's fields from the finest archive that reaches
// back to q.Since in at most q.Points points with a step not below q.Step;
// when none does, the coarsest that fits the points, and failing that the
// coarsest, its newest q.Points steps. An app's "replicas" field is its
// replica samples per step of the finest archive (one per replica when
// they are sampled at that step, 10 s by default).
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
	from, to := q.Since.UnixNano(), q.Until.UnixNano()
	i := t.choose(from, to, q.Step, q.Points)
	a := t.h.spec[i]
	step := int64(a.Step)
	k1 := floorDiv(to, step)
	n := k1 - floorDiv(from, step) + 1
	if n > int64(q.Points) || n <= 0 {
		n = int64(q.Points)
	}
	k0 := k1 - n + 1
	fields := fieldsOf(kind)
	m = masterapi.Metrics{Kind: q.Kind, Name: q.Name, Step: a.Step.Seconds(), Fields: fields, Times: make([]int64, n)}
	m.Avg, m.Min, m.Max = make([][]masterapi.Value, len(fields)), make([][]masterapi.Value, len(fields)), make([][]masterapi.Value, len(fields))
	for f := range fields {
		m.Avg[f], m.Min[f], m.Max[f] = make([]masterapi.Value, n), make([]masterapi.Value, n), make([]masterapi.Value, n)
	}
	perFinest := float64(t.h.spec[0].Step) / float64(a.Step)
	for j := range n {
		k := k0 + j
		m.Times[j] = time.Duration(k*step).Milliseconds() / 1000
		for f := range fields {
			avg, lo, hi, c := t.cell(i, k, f)
			if kind == kindApp && f == len(fields)-1 && c > 0 {
				avg = float64(c) * perFinest
				lo, hi = avg, avg
			}
			m.Avg[f][j], m.Min[f][j], m.Max[f][j] = masterapi.Value(avg), masterapi.Value(lo), masterapi.Value(hi)
		}
	}
	return m, nil
}

// choose picks the archive as History says.
func (t *table) choose(from, to int64, minStep time.Duration, points int) int {
	fit := -1
	for i, a := range t.h.spec {
		if a.Step < minStep && i < len(t.h.spec)-1 {
			continue
		}
		step := int64(a.Step)
		if floorDiv(to, step)-floorDiv(from, step)+1 > int64(points) {
			continue
		}
		if t.reaches(i, a, from) {
			return i
		}
		fit = i
	}
	if fit >= 0 {
		return fit
	}
	return len(t.h.spec) - 1
}

// reaches: from's step is still in archive i's ring (an empty table
// reaches nothing back, so it is read from its finest archive).
func (t *table) reaches(i int, a rrd.Archive, from int64) bool {
	return t.newest() == 0 || floorDiv(from, int64(a.Step)) > t.last(i)-int64(a.Rows)
}

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
