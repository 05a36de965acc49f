package ui

import (
	"context"
	"math"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

// graphDef is one graph of a node or an app: the fields it draws, in the
// units of the first, and the field whose newest value is its ceiling.
type graphDef struct {
	ID, Title, Unit string
	Fields          []string
	Labels          []string
	Limit           string
}

var nodeGraphs = []graphDef{
	{ID: "cpu", Title: "CPU (cores)", Unit: "cores", Fields: []string{"cpu"}, Labels: []string{"cpu"}},
	{ID: "mem", Title: "Memory", Unit: "bytes", Fields: []string{"mem_used"}, Labels: []string{"used"}, Limit: "mem_total"},
	{ID: "disk", Title: "Disk space", Unit: "bytes", Fields: []string{"disk_used"}, Labels: []string{"used"}, Limit: "disk_total"},
	{ID: "net", Title: "Network", Unit: "bytes/s", Fields: []string{"net_rx", "net_tx"}, Labels: []string{"in", "out"}},
	{ID: "io", Title: "Disk I/O", Unit: "bytes/s", Fields: []string{"disk_read", "disk_write"}, Labels: []string{"read", "write"}},
	{ID: "load", Title: "Load", Unit: "", Fields: []string{"load1"}, Labels: []string{"load1"}},
	{ID: "containers", Title: "Containers", Unit: "", Fields: []string{"containers"}, Labels: []string{"running"}},
}

// An app's series are its replicas' fed into one archive: each step's
// average is the mean over replicas, so the graphs are per replica.
var appGraphs = []graphDef{
	{ID: "cpu", Title: "CPU per replica (cores)", Unit: "cores", Fields: []string{"cpu"}, Labels: []string{"cpu"}},
	{ID: "mem", Title: "Memory per replica", Unit: "bytes", Fields: []string{"mem"}, Labels: []string{"used"}, Limit: "mem_limit"},
	{ID: "net", Title: "Network per replica", Unit: "bytes/s", Fields: []string{"net_rx", "net_tx"}, Labels: []string{"in", "out"}},
	{ID: "restarts", Title: "Restarts", Unit: "", Fields: []string{"restarts"}, Labels: []string{"restarts"}},
}

// An edge route's graphs: its traffic over all edges.
var routeGraphDefs = []graphDef{
	{ID: "requests", Title: "Requests", Unit: "1/s", Fields: []string{"requests", "errors"}, Labels: []string{"requests", "errors"}},
	{ID: "latency", Title: "Latency", Unit: "s", Fields: []string{"latency_avg", "latency_max"}, Labels: []string{"average", "slowest"}},
}

// graphsOf returns the graphs of a kind of thing.
func graphsOf(kind string) []graphDef {
	switch kind {
	case masterapi.MetricsNode:
		return nodeGraphs
	case masterapi.MetricsRoute:
		return routeGraphDefs
	}
	return appGraphs
}

func findGraph(kind, id string) (graphDef, bool) {
	for _, g := range graphsOf(kind) {
		if g.ID == id {
			return g, true
		}
	}
	return graphDef{}, false
}

// history asks the master for a thing's series over a view, at the view's
// step (the graph merges what still falls in one pixel column).
func (h *Handler) history(ctx context.Context, kind, name string, sp span, now time.Time) (masterapi.Metrics, error) {
	return h.c.MetricsHistory(ctx, masterapi.MetricsQuery{Kind: kind, Name: name, Since: now.Add(-sp.length()), Until: now,
		Step: sp.mrtgStep(), Points: maxPoints})
}

// build turns a thing's history into what one of its graphs shows.
func (d graphDef) build(m masterapi.Metrics, sp span, now time.Time) graphData {
	g := graphData{Title: d.Title, Unit: d.Unit, Range: sp, Start: now.Add(-sp.length()), End: now, Times: m.Times, Limit: math.NaN()}
	for i, f := range d.Fields {
		k := fieldIndex(m, f)
		g.Series = append(g.Series, series{Label: d.Labels[i], Avg: floats(m.Avg, k), Min: floats(m.Min, k), Max: floats(m.Max, k)})
	}
	if d.Limit != "" {
		lim := floats(m.Avg, fieldIndex(m, d.Limit))
		for i := len(lim) - 1; i >= 0; i-- {
			if !math.IsNaN(lim[i]) {
				g.Limit = lim[i]
				break
			}
		}
	}
	return g
}

func fieldIndex(m masterapi.Metrics, name string) int {
	for i, f := range m.Fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// floats is one field's values (all NaN when the field is absent or its
// row is short).
func floats(rows [][]masterapi.Value, k int) []float64 {
	if k < 0 || k >= len(rows) {
		return nil
	}
	out := make([]float64, len(rows[k]))
	for i, v := range rows[k] {
		out[i] = float64(v)
	}
	return out
}
