package archive

import (
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/metrics/rrd"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func TestClampRange(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	spec := rrd.Spec{{Step: 10 * time.Second, Rows: 360}, {Step: time.Hour, Rows: 24}}
	span := 25 * time.Hour
	tests := []struct {
		name                 string
		since, until         time.Time
		wantSince, wantUntil time.Time
	}{
		{"within", now.Add(-time.Hour), now, now.Add(-time.Hour), now},
		{"since before the span", now.Add(-100 * time.Hour), now, now.Add(-span), now},
		{"until ahead (a clock set back)", now.Add(time.Hour), now.Add(2 * time.Hour), now.Add(time.Hour), now.Add(2 * time.Hour)},
		{"until far ahead", now.Add(-time.Hour), now.Add(1000 * time.Hour), now.Add(span - span), now.Add(span)},
		{"until far behind", now.Add(-1000 * time.Hour), now.Add(-900 * time.Hour), now.Add(-2*span - span), now.Add(-2 * span)},
		{"centuries", time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC), now, now.Add(span)},
		{"past UnixNano", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), now, now.Add(span)},
		{"since after until", now, now.Add(-time.Hour), now.Add(-time.Hour), now.Add(-time.Hour)},
	}
	for _, tt := range tests {
		s, u := clampRange(tt.since, tt.until, now, spec)
		if !s.Equal(tt.wantSince) || !u.Equal(tt.wantUntil) {
			t.Errorf("%s: %v..%v; want %v..%v", tt.name, s, u, tt.wantSince, tt.wantUntil)
		}
	}
}

// TestHistoryCenturies: a range of centuries reads the archive's span,
// not every step of the centuries (most of a second of CPU a request,
// which any viewer could ask for again and again).
func TestHistoryCenturies(t *testing.T) {
	now := time.Now()
	s, err := Open(t.TempDir(), Options{Now: func() time.Time { return now }, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ingest("n1", nodeapi.MetricsRecord{Time: now, Groups: []nodeapi.MetricsGroup{{Kind: nodeapi.GroupNode, Name: "n1", Values: []float64{1}}}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.History(masterapi.MetricsQuery{Kind: "node", Name: "n1", Points: MaxPoints,
		Since: time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var span time.Duration
	for _, a := range rrd.Default {
		span = max(span, a.Step*time.Duration(a.Rows+1))
	}
	if first := time.Unix(m.Times[0], 0); first.Before(now.Add(-span - 24*time.Hour)) {
		t.Errorf("the history starts at %v, before the archive's span (%v) back from now", first, span)
	}
	if m.Step > 3600 {
		t.Errorf("points of %v s; want the coarsest archive's hour at most (the range is its span)", m.Step)
	}
	// The sample is in it.
	found := false
	for _, v := range m.Avg[0] {
		found = found || v == 1
	}
	if !found {
		t.Errorf("the sample is not in the history")
	}
}
