package rrd

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type sample struct {
	at time.Duration // after t0
	v  float64
}

// pt is a step as a test expects it; n == 0 means unknown.
type pt struct {
	n             int
	avg, min, max float64
}

var small = Spec{{Step: 10 * time.Second, Rows: 6}, {Step: time.Minute, Rows: 5}}

func newSeries(t testing.TB, sp Spec) *Series {
	t.Helper()
	s, err := New(sp)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// steps reads archive i from t0 for n of its steps.
func steps(s *Series, i, n int) []pt {
	a := &s.archives[i]
	from := t0.UnixNano()
	to := from + int64(n-1)*int64(a.Step)
	var out []pt
	for _, p := range a.points(from, to, maxRows) {
		out = append(out, pt{p.N, p.Avg, p.Min, p.Max})
	}
	return out
}

func samePts(got, want []pt) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.n != w.n {
			return false
		}
		if w.n == 0 {
			if !math.IsNaN(g.avg) || !math.IsNaN(g.min) || !math.IsNaN(g.max) {
				return false
			}
			continue
		}
		if math.Abs(g.avg-w.avg) > 1e-5 || g.min != w.min || g.max != w.max {
			return false
		}
	}
	return true
}

func TestConsolidation(t *testing.T) {
	var u pt // unknown
	tests := []struct {
		name    string
		samples []sample
		refused []int // per sample; nil: all zero
		dropped uint64
		fine    []pt // archive 0 (10 s), 4 steps from t0
		coarse  []pt // archive 1 (1 min), 2 steps from t0
	}{
		{
			name:    "avg min max across steps",
			samples: []sample{{0, 1}, {5 * time.Second, 3}, {10 * time.Second, 10}, {12 * time.Second, 20}, {19 * time.Second, 0}},
			fine:    []pt{{2, 2, 1, 3}, {3, 10, 0, 20}, u, u},
			coarse:  []pt{{5, 6.8, 0, 20}, u},
		},
		{
			name:    "partial steps and unknown between",
			samples: []sample{{0, 5}, {30 * time.Second, 7}, {50 * time.Second, -1}},
			fine:    []pt{{1, 5, 5, 5}, u, u, {1, 7, 7, 7}},
			coarse:  []pt{{3, 11.0 / 3, -1, 7}, u},
		},
		{
			name:    "out of order: refused by the closed 10 s step, kept in the open minute",
			samples: []sample{{0, 1}, {25 * time.Second, 2}, {15 * time.Second, 100}, {21 * time.Second, 3}},
			refused: []int{0, 0, 1, 0},
			dropped: 1,
			fine:    []pt{{1, 1, 1, 1}, u, {2, 2.5, 2, 3}, u},
			coarse:  []pt{{4, 26.5, 1, 100}, u},
		},
		{
			name:    "older than every archive's newest step",
			samples: []sample{{70 * time.Second, 4}, {5 * time.Second, 9}},
			refused: []int{0, 2},
			dropped: 1,
			fine:    []pt{u, u, u, u},
			coarse:  []pt{u, {1, 4, 4, 4}},
		},
		{
			name:    "NaN is no sample",
			samples: []sample{{0, math.NaN()}, {1 * time.Second, 2}, {2 * time.Second, math.NaN()}},
			fine:    []pt{{1, 2, 2, 2}, u, u, u},
			coarse:  []pt{{1, 2, 2, 2}, u},
		},
		{
			name:    "no samples: all unknown",
			samples: nil,
			fine:    []pt{u, u, u, u},
			coarse:  []pt{u, u},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeries(t, small)
			for i, sm := range tt.samples {
				want := 0
				if tt.refused != nil {
					want = tt.refused[i]
				}
				if got := s.Add(t0.Add(sm.at), sm.v); got != want {
					t.Errorf("Add(%v, %v) refused by %d archives, want %d", sm.at, sm.v, got, want)
				}
			}
			if s.Dropped() != tt.dropped {
				t.Errorf("Dropped() = %d, want %d", s.Dropped(), tt.dropped)
			}
			if got := steps(s, 0, 4); !samePts(got, tt.fine) {
				t.Errorf("10 s archive:\n got %v\nwant %v", got, tt.fine)
			}
			if got := steps(s, 1, 2); !samePts(got, tt.coarse) {
				t.Errorf("1 min archive:\n got %v\nwant %v", got, tt.coarse)
			}
		})
	}
}

func TestNegativeTimeFloors(t *testing.T) {
	s := newSeries(t, small)
	at := time.Unix(-5, 0) // in the step [-10 s, 0)
	s.Add(at, 1)
	if got := s.archives[0].last; got != -1 {
		t.Fatalf("step of -5 s = %d, want -1", got)
	}
}

// TestGapThenBackfill: the master misses a stretch, sees it unknown, then
// the node's ring delivers it in order; the result is as if nothing was
// missed.
func TestGapThenBackfill(t *testing.T) {
	var all []sample
	for i := 0; i < 200; i++ {
		all = append(all, sample{time.Duration(i) * 7 * time.Second, float64(i % 13)})
	}
	whole, late := newSeries(t, Default), newSeries(t, Default)
	for _, sm := range all {
		whole.Add(t0.Add(sm.at), sm.v)
	}
	for _, sm := range all[:50] {
		late.Add(t0.Add(sm.at), sm.v)
	}
	_, mid := late.Fetch(t0, t0.Add(all[199].at), 1000)
	if p := mid[len(mid)-1]; p.N != 0 || !math.IsNaN(p.Avg) {
		t.Fatalf("before the backfill the newest step is %+v, want unknown", p)
	}
	for _, sm := range all[50:] {
		if r := late.Add(t0.Add(sm.at), sm.v); r != 0 {
			t.Fatalf("backfilled sample %v refused by %d archives", sm.at, r)
		}
	}
	for i := range Default {
		n := int(Default[i].Rows)
		if n > 400 {
			n = 400
		}
		if g, w := steps(late, i, n), steps(whole, i, n); !samePts(g, w) {
			t.Errorf("archive %d after backfill differs from a series fed without a gap", i)
		}
	}
	if late.Dropped() != 0 {
		t.Errorf("Dropped() = %d, want 0", late.Dropped())
	}
}

// TestRingWrap: after 2 days and an hour at 10 s the finest archive holds
// exactly the last 2 days, each step once.
func TestRingWrap(t *testing.T) {
	s := newSeries(t, Default)
	const total = 2*24*360 + 360
	for i := 0; i < total; i++ {
		s.Add(t0.Add(time.Duration(i)*10*time.Second), float64(i))
	}
	a := &s.archives[0]
	last := t0.Add(time.Duration(total-1) * 10 * time.Second)
	first := last.Add(-a.Span() + a.Step)
	pts := a.points(first.Add(-a.Step).UnixNano(), last.UnixNano(), maxRows)
	if len(pts) != a.Rows+1 {
		t.Fatalf("%d points, want %d", len(pts), a.Rows+1)
	}
	if pts[0].N != 0 || !math.IsNaN(pts[0].Avg) {
		t.Errorf("the step before the last 2 days is %+v, want unknown", pts[0])
	}
	for j, p := range pts[1:] {
		want := float64(total - a.Rows + j)
		if p.N != 1 || p.Avg != want || p.Min != want || p.Max != want {
			t.Fatalf("step %d (%v) = %+v, want one sample %v", j, p.T, p, want)
		}
	}
	for _, p := range s.archives[1].points(first.UnixNano(), last.Add(-time.Minute).UnixNano(), maxRows) {
		if p.N != 6 {
			t.Fatalf("1 min step %v holds %d samples, want 6", p.T, p.N)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	bad := []Spec{
		nil,
		{{Step: 0, Rows: 1}},
		{{Step: time.Second, Rows: 0}},
		{{Step: time.Second, Rows: maxRows + 1}},
		{{Step: time.Minute, Rows: 1}, {Step: time.Second, Rows: 1}},
	}
	for _, sp := range bad {
		if _, err := New(sp); err == nil {
			t.Errorf("New(%v) succeeded, want an error", sp)
		}
	}
	if err := Default.Validate(); err != nil {
		t.Fatal(err)
	}
}
