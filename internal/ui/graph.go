package ui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// A graph is drawn the way MRTG draws one: the average as a line over a
// band from the minimum to the maximum of each step, a ceiling (a node's
// memory, a container's limit) as a dashed line, gaps where nothing was
// sampled. Drawing is pure: the points in, SVG geometry out, and the page
// template writes it (html/template escapes every label).

// series is one line of a graph: a value per step (NaN: unknown).
type series struct {
	Label         string
	Color         string // a CSS class suffix: s0, s1
	Avg, Min, Max []float64
}

// graphData is what a graph shows: steps starting at Times (Unix seconds).
type graphData struct {
	Title  string
	Unit   string
	Range  span
	Start  time.Time
	End    time.Time
	Times  []int64
	Series []series
	Limit  float64 // NaN: none
}

// Geometry of a full graph (in SVG user units).
const (
	graphW, graphH = 580, 180
	padL, padR     = 62, 10
	padT, padB     = 10, 22
)

// svgGraph is a drawn graph, ready for the template.
type svgGraph struct {
	Title, Link  string
	W, H         int
	Empty        bool
	PlotX, PlotY int
	PlotW, PlotH int
	Bands, Lines []svgPath
	Limit        *svgLine
	Grid         []svgLine
	YLabels      []svgText
	XLabels      []svgText
	Legend       []legendItem
}

type svgPath struct{ D, Class string }
type svgLine struct{ X1, Y1, X2, Y2 float64 }
type svgText struct {
	X, Y float64
	Text string
}
type legendItem struct{ Class, Text string }

// draw lays a graph out in w×h.
func draw(g graphData, w, h int) svgGraph {
	out := svgGraph{Title: g.Title, W: w, H: h, PlotX: padL, PlotY: padT, PlotW: w - padL - padR, PlotH: h - padT - padB}
	top := 0.0
	known := false
	for _, s := range g.Series {
		for i := range s.Avg {
			if a := at(s.Avg, i); !math.IsNaN(a) {
				known = true
				top = math.Max(top, a)
				if m := at(s.Max, i); !math.IsNaN(m) {
					top = math.Max(top, m)
				}
			}
		}
	}
	if !math.IsNaN(g.Limit) && g.Limit > 0 && g.Limit <= top*1.5 {
		top = math.Max(top, g.Limit)
	}
	out.Empty = !known
	top, ticks := scaleFor(top, g.Unit)
	x0, y0 := float64(out.PlotX), float64(out.PlotY)
	pw, ph := float64(out.PlotW), float64(out.PlotH)
	yOf := func(v float64) float64 { return round1(y0 + ph - v/top*ph) }
	for _, v := range ticks {
		y := yOf(v)
		out.Grid = append(out.Grid, svgLine{x0, y, x0 + pw, y})
		out.YLabels = append(out.YLabels, svgText{x0 - 4, y + 4, axisLabel(v, g.Unit)})
	}
	span := float64(g.End.Unix() - g.Start.Unix())
	if span <= 0 {
		span = 1
	}
	xOf := func(t int64) float64 { return round1(x0 + float64(t-g.Start.Unix())/span*pw) }
	for _, t := range xTicks(g.Start, g.End, g.Range) {
		x := xOf(t.Unix())
		out.Grid = append(out.Grid, svgLine{x, y0, x, y0 + ph})
		out.XLabels = append(out.XLabels, svgText{x, y0 + ph + 15, t.Format(g.Range.tickFormat())})
	}
	if !math.IsNaN(g.Limit) && g.Limit > 0 && g.Limit <= top {
		y := yOf(g.Limit)
		out.Limit = &svgLine{x0, y, x0 + pw, y}
	}
	cols := columns(g.Times, g.Start.Unix(), span, out.PlotW)
	for i, s := range g.Series {
		cls := "s" + strconv.Itoa(i%4)
		c := consolidate(s, cols, out.PlotW)
		band, line := paths(c, x0, pw, yOf)
		if band != "" {
			out.Bands = append(out.Bands, svgPath{band, "band " + cls})
		}
		if line != "" {
			out.Lines = append(out.Lines, svgPath{line, "avg " + cls})
		}
		out.Legend = append(out.Legend, legendItem{cls, legendText(s, g.Unit)})
	}
	if !math.IsNaN(g.Limit) && g.Limit > 0 {
		out.Legend = append(out.Legend, legendItem{"limit", "limit " + formatValue(g.Limit, g.Unit)})
	}
	return out
}

func at(v []float64, i int) float64 {
	if i < len(v) {
		return v[i]
	}
	return math.NaN()
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// columns maps each step to the pixel column it falls in (-1: outside).
func columns(times []int64, start int64, span float64, w int) []int {
	out := make([]int, len(times))
	for i, t := range times {
		c := int(float64(t-start) / span * float64(w))
		if c < 0 || c >= w {
			c = -1
		}
		out[i] = c
	}
	return out
}

// column is one pixel column of a series: the mean of its steps' averages,
// the least minimum and the greatest maximum (NaN: nothing known), and
// how many steps fell in it (none: the steps are wider than a pixel and
// the line passes over it).
type column struct {
	avg, min, max float64
	steps         int
}

// consolidate merges the steps that fall in one pixel column, so that a
// year of hourly steps draws as well as a day of five-minute ones.
func consolidate(s series, cols []int, w int) []column {
	out := make([]column, w)
	n := make([]int, w)
	for i := range out {
		out[i] = column{0, math.NaN(), math.NaN(), 0}
	}
	for i, c := range cols {
		if c < 0 {
			continue
		}
		out[c].steps++
		a, lo, hi := at(s.Avg, i), at(s.Min, i), at(s.Max, i)
		if math.IsNaN(a) {
			continue
		}
		if math.IsNaN(lo) {
			lo = a
		}
		if math.IsNaN(hi) {
			hi = a
		}
		out[c].avg += a
		n[c]++
		if n[c] == 1 || lo < out[c].min {
			out[c].min = lo
		}
		if n[c] == 1 || hi > out[c].max {
			out[c].max = hi
		}
	}
	for i := range out {
		if n[i] == 0 {
			out[i].avg = math.NaN()
		} else {
			out[i].avg /= float64(n[i])
		}
	}
	return out
}

// paths draws the band and the line through the columns that steps fell
// in, breaking them at a column whose steps are all unknown. A run of one
// column is drawn one pixel wide so that a lone sample shows.
func paths(cols []column, x0, pw float64, yOf func(float64) float64) (band, line string) {
	type pt struct {
		x float64
		c column
	}
	var runs [][]pt
	var run []pt
	w := float64(len(cols))
	for k, c := range cols {
		switch {
		case c.steps == 0:
			continue
		case math.IsNaN(c.avg):
			if len(run) > 0 {
				runs = append(runs, run)
			}
			run = nil
		default:
			run = append(run, pt{round1(x0 + (float64(k)+0.5)/w*pw), c})
		}
	}
	if len(run) > 0 {
		runs = append(runs, run)
	}
	var b, l strings.Builder
	for _, run := range runs {
		if len(run) == 1 {
			x, c := run[0].x, run[0].c
			fmt.Fprintf(&l, "M%g %gH%g", x-0.5, yOf(c.avg), x+0.5)
			fmt.Fprintf(&b, "M%g %gH%gV%gH%gZ", x-0.5, yOf(c.max), x+0.5, yOf(c.min), x-0.5)
			continue
		}
		for k, p := range run {
			cmd := "L"
			if k == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&l, "%s%g %g", cmd, p.x, yOf(p.c.avg))
			fmt.Fprintf(&b, "%s%g %g", cmd, p.x, yOf(p.c.max))
		}
		for k := len(run) - 1; k >= 0; k-- {
			fmt.Fprintf(&b, "L%g %g", run[k].x, yOf(run[k].c.min))
		}
		b.WriteString("Z")
	}
	return b.String(), l.String()
}

// legendText is MRTG's legend: the maximum, the average and the current
// (newest known) value over the graph.
func legendText(s series, unit string) string {
	hi, sum, n, cur := math.NaN(), 0.0, 0, math.NaN()
	for i, a := range s.Avg {
		if math.IsNaN(a) {
			continue
		}
		m := at(s.Max, i)
		if math.IsNaN(m) {
			m = a
		}
		if math.IsNaN(hi) || m > hi {
			hi = m
		}
		sum += a
		n++
		cur = a
	}
	if n == 0 {
		return s.Label + ": no data"
	}
	return fmt.Sprintf("%s: max %s, avg %s, now %s", s.Label, formatValue(hi, unit), formatValue(sum/float64(n), unit), formatValue(cur, unit))
}

// niceScale rounds top up to 1, 2, 2.5 or 5 times a power of ten and
// returns it with the grid values: steps of a quarter of 1 or 2, a fifth
// of 2.5, 5 or 10, so that every label is short.
func niceScale(top float64) (float64, []float64) {
	if top <= 0 || math.IsNaN(top) || math.IsInf(top, 0) {
		top = 1
	}
	p := math.Pow(10, math.Floor(math.Log10(top)))
	div := 5
	for _, m := range []struct {
		f   float64
		div int
	}{{1, 4}, {2, 4}, {2.5, 5}, {5, 5}, {10, 5}} {
		if m.f*p >= top*(1-1e-9) {
			top, div = m.f*p, m.div
			break
		}
	}
	ticks := make([]float64, div+1)
	for i := range ticks {
		ticks[i] = top * float64(i) / float64(div)
	}
	return top, ticks
}

// scaleFor is niceScale in the binary multiple of bytes that top is
// shown in (so that a memory axis reads 512 MiB, 1 GiB, not 954 MiB).
func scaleFor(top float64, unit string) (float64, []float64) {
	if unit != "bytes" && unit != "bytes/s" || !(top >= 1024) {
		return niceScale(top)
	}
	m := 1.0
	for top/m >= 1024 && m < 1<<50 {
		m *= 1024
	}
	t, ticks := niceScale(top / m)
	for i := range ticks {
		ticks[i] *= m
	}
	return t * m, ticks
}

// axisLabel is a value on an axis: without the unit word for cores (the
// caption names it).
func axisLabel(v float64, unit string) string {
	if unit == "cores" {
		return short(v)
	}
	return formatValue(v, unit)
}

// formatValue writes a value in its unit, short: 1.5 GiB, 230 KiB/s,
// 0.25 cores, 12 ms.
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	switch unit {
	case "bytes", "bytes/s":
		suffix := strings.TrimPrefix(unit, "bytes")
		return binary(v) + suffix
	case "cores":
		return short(v) + " cores"
	case "s":
		if v < 1 {
			return short(v*1000) + " ms"
		}
		return short(v) + " s"
	case "%":
		return short(v) + "%"
	case "1/s":
		return si(v) + "/s"
	}
	return si(v)
}

func binary(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return short(v) + " " + units[i]
}

func si(v float64) string {
	units := []string{"", "k", "M", "G", "T"}
	i := 0
	for math.Abs(v) >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return short(v) + units[i]
}

// short writes three significant digits at most, no trailing zeros.
func short(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return trimZeros(strconv.FormatFloat(v, 'f', 1, 64))
	case a >= 0.01:
		return trimZeros(strconv.FormatFloat(v, 'f', 2, 64))
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}

func trimZeros(s string) string {
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}
