package rrd

import (
	"math"
	"testing"
	"time"
)

func TestFetchChoosesArchive(t *testing.T) {
	now := t0.Add(3 * 365 * 24 * time.Hour)
	s := newSeries(t, Default)
	s.Add(now, 1)
	day := 24 * time.Hour
	tests := []struct {
		name      string
		span      time.Duration
		maxPoints int
		step      time.Duration
		points    int
	}{
		{"1 h at 10 s", time.Hour, 1000, 10 * time.Second, 361},
		{"3 days: past the 10 s ring, 1 min", 3 * day, 10000, time.Minute, 3*24*60 + 1},
		{"30 days, room for 5 min", 30 * day, 10000, 5 * time.Minute, 30*24*12 + 1},
		{"30 days, 1000 points: 1 h", 30 * day, 1000, time.Hour, 30*24 + 1},
		{"2 years at 1 h", 729 * day, 20000, time.Hour, 729*24 + 1},
		{"2 years, 1000 points: coarsest, newest 1000", 729 * day, 1000, time.Hour, 1000},
		{"1 h, no limit", time.Hour, 0, 10 * time.Second, 361},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, pts := s.Fetch(now.Add(-tt.span), now, tt.maxPoints)
			if step != tt.step || len(pts) != tt.points {
				t.Fatalf("Fetch: step %v, %d points; want %v, %d", step, len(pts), tt.step, tt.points)
			}
			last := pts[len(pts)-1]
			if !last.T.Equal(now.Truncate(step)) || last.N != 1 || last.Avg != 1 {
				t.Errorf("newest point %+v, want the sample at %v", last, now)
			}
			if pts[0].N != 0 || !math.IsNaN(pts[0].Max) {
				t.Errorf("oldest point %+v, want unknown", pts[0])
			}
		})
	}
}

func TestFetchEdges(t *testing.T) {
	s := newSeries(t, small)
	if _, pts := s.Fetch(t0, t0.Add(time.Minute), 100); len(pts) != 7 || pts[0].N != 0 {
		t.Errorf("empty series: %d points (%+v), want 7 unknown", len(pts), pts[0])
	}
	s.Add(t0, 2)
	_, a := s.Fetch(t0, t0.Add(30*time.Second), 100)
	_, b := s.Fetch(t0.Add(30*time.Second), t0, 100)
	if len(a) != len(b) || a[0] != b[0] {
		t.Errorf("from after to is not the same range swapped")
	}
	far := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, pts := s.Fetch(time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC), far, 0); len(pts) != small[1].Rows {
		t.Errorf("%d points for an unlimited fetch, want the %d rows of the ring", len(pts), small[1].Rows)
	}
}

// TestFetchYear: a year fed hourly reads back whole from the hourly archive.
func TestFetchYear(t *testing.T) {
	s, end := yearSeries(t)
	step, pts := s.Fetch(end.Add(-365*24*time.Hour), end, 10000)
	if step != time.Hour || len(pts) != 365*24+1 {
		t.Fatalf("step %v, %d points", step, len(pts))
	}
	for _, p := range pts[1:] {
		if p.N != 1 {
			t.Fatalf("%v: %d samples, want 1", p.T, p.N)
		}
	}
}

func yearSeries(t testing.TB) (*Series, time.Time) {
	s := newSeries(t, Default)
	at := t0
	for i := 0; i < 365*24; i++ {
		at = t0.Add(time.Duration(i) * time.Hour)
		s.Add(at, float64(i%100))
	}
	return s, at
}

func BenchmarkAdd(b *testing.B) {
	s := newSeries(b, Default)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Add(t0.Add(time.Duration(i)*10*time.Second), float64(i%100))
	}
}

func BenchmarkFetchYear(b *testing.B) {
	s, end := yearSeries(b)
	from := end.Add(-365 * 24 * time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if step, pts := s.Fetch(from, end, 10000); step != time.Hour || len(pts) != 365*24+1 {
			b.Fatalf("step %v, %d points", step, len(pts))
		}
	}
}
