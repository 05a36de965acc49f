package ui

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNiceScale(t *testing.T) {
	for _, tt := range []struct{ in, top float64 }{
		{0, 1}, {math.NaN(), 1}, {0.7, 1}, {1, 1}, {1.01, 2}, {2.2, 2.5}, {3, 5}, {7, 10}, {1234, 2000}, {3e9, 5e9}, {0.023, 0.025},
	} {
		top, ticks := niceScale(tt.in)
		if math.Abs(top-tt.top) > 1e-12*tt.top || len(ticks) < 5 || len(ticks) > 6 || ticks[len(ticks)-1] != top || ticks[0] != 0 {
			t.Errorf("niceScale(%v) = %v %v, want top %v", tt.in, top, ticks, tt.top)
		}
	}
}

// TestScaleFor: a bytes axis is nice in binary multiples.
func TestScaleFor(t *testing.T) {
	top, ticks := scaleFor(1.86*(1<<30), "bytes")
	if top != 2<<30 || len(ticks) != 5 || formatValue(ticks[1], "bytes") != "512 MiB" {
		t.Errorf("scaleFor(1.86 GiB) = %v %v", top, ticks)
	}
	if top, _ := scaleFor(700, "bytes"); top != 1000 {
		t.Errorf("scaleFor(700 B) = %v", top)
	}
}

func TestFormatValue(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		unit string
		want string
	}{
		{0, "bytes", "0 B"}, {1536, "bytes", "1.5 KiB"}, {3 << 30, "bytes", "3 GiB"}, {250 << 20, "bytes/s", "250 MiB/s"},
		{0.25, "cores", "0.25 cores"}, {12, "cores", "12 cores"}, {0.012, "s", "12 ms"}, {2.5, "s", "2.5 s"},
		{1500, "", "1.5k"}, {42, "1/s", "42/s"}, {math.NaN(), "bytes", "–"}, {0.001, "", "0.001"}, {123.4, "", "123"},
	} {
		if got := formatValue(tt.v, tt.unit); got != tt.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}

// TestConsolidate: steps in one pixel column merge into the mean of their
// averages, the least minimum and the greatest maximum; unknown steps
// count for nothing.
func TestConsolidate(t *testing.T) {
	nan := math.NaN()
	s := series{Avg: []float64{1, 3, nan, 5, nan}, Min: []float64{0, 2, nan, nan, nan}, Max: []float64{2, 9, nan, 6, nan}}
	cols := consolidate(s, []int{0, 0, 1, 1, 2}, 3)
	want := []column{{2, 0, 9, 2}, {5, 5, 6, 2}, {nan, nan, nan, 1}}
	for i, c := range cols {
		w := want[i]
		if !same(c.avg, w.avg) || !same(c.min, w.min) || !same(c.max, w.max) || c.steps != w.steps {
			t.Errorf("column %d = %+v, want %+v", i, c, w)
		}
	}
}

func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// TestDraw: a series with a gap draws two runs; an unknown series draws
// nothing and says so; a ceiling within the scale is a line.
func TestDraw(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	nan := math.NaN()
	g := graphData{Title: "x", Unit: "bytes", Range: day, Start: start, End: start.Add(4 * time.Hour), Limit: 100,
		Times:  []int64{start.Unix(), start.Add(time.Hour).Unix(), start.Add(2 * time.Hour).Unix(), start.Add(3 * time.Hour).Unix()},
		Series: []series{{Label: "used", Avg: []float64{10, 20, nan, 40}, Min: []float64{5, 15, nan, 30}, Max: []float64{15, 25, nan, 80}}}}
	d := draw(g, graphW, graphH)
	if d.Empty || len(d.Lines) != 1 || len(d.Bands) != 1 || d.Limit == nil {
		t.Fatalf("draw: %+v", d)
	}
	if n := strings.Count(d.Lines[0].D, "M"); n != 2 {
		t.Errorf("line %q: %d runs, want 2", d.Lines[0].D, n)
	}
	if n := strings.Count(d.Bands[0].D, "Z"); n != 2 {
		t.Errorf("band %q: %d runs, want 2", d.Bands[0].D, n)
	}
	if d.Legend[0].Text != "used: max 80 B, avg 23.3 B, now 40 B" {
		t.Errorf("legend %q", d.Legend[0].Text)
	}
	// Every point lies in the plot.
	for _, f := range strings.FieldsFunc(d.Lines[0].D+d.Bands[0].D, func(r rune) bool { return strings.ContainsRune("MLHVZ ", r) }) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v < float64(padT) || v > float64(padL+d.PlotW) {
			t.Errorf("coordinate %q outside the plot", f)
		}
	}
	g.Series[0].Avg = []float64{nan, nan, nan, nan}
	if d := draw(g, graphW, graphH); !d.Empty || len(d.Lines) != 0 {
		t.Errorf("an unknown series: %+v", d)
	}
}

// TestXTicks: each view marks its own times.
func TestXTicks(t *testing.T) {
	end := time.Date(2026, 12, 7, 21, 30, 0, 0, time.Local)
	for _, tt := range []struct {
		s    span
		n    int
		want string
	}{{day, 8, "00:00"}, {week, 7, "Mon 7"}, {month, 4, "Nov 30"}, {year, 12, "Jan"}} {
		ticks := xTicks(end.Add(-tt.s.length()), end, tt.s)
		var labels []string
		for _, x := range ticks {
			labels = append(labels, x.Format(tt.s.tickFormat()))
		}
		if len(ticks) < tt.n || len(ticks) > tt.n+1 || !strings.Contains(strings.Join(labels, ","), tt.want) {
			t.Errorf("%s: %v", tt.s, labels)
		}
	}
}
