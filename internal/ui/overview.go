package ui

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

// overviewPage is the cluster at a glance.
type overviewPage struct {
	Title  string
	Now    time.Time
	Nodes  []nodeRow
	Apps   []appRow
	Alerts feed[alertRow]
	Events feed[eventRow]
	Notes  []string // what could not be read
}

type nodeRow struct {
	masterapi.Node
	Href           string
	CPU, Mem, Disk spark
}

type appRow struct {
	masterapi.App
	Href string
	OK   bool // every desired replica ready
}

// feed is a section read from a route that a master may not have yet
// (events, alerts): empty with a note when it could not be read.
type feed[T any] struct {
	Items []T
	Note  string
}

// sparkFetchers bounds the history requests one overview makes at once.
const sparkFetchers = 8

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	now := h.now()
	p := overviewPage{Title: "Cluster", Now: now}
	var (
		wg     sync.WaitGroup
		nodes  []masterapi.Node
		apps   []masterapi.App
		latest []masterapi.Latest
		errN   error
		errA   error
		errL   error
	)
	wg.Add(5)
	go func() { defer wg.Done(); nodes, errN = h.c.Nodes(ctx) }()
	go func() { defer wg.Done(); apps, errA = h.c.Apps(ctx) }()
	go func() { defer wg.Done(); latest, errL = h.c.MetricsLatest(ctx) }()
	go func() { defer wg.Done(); p.Alerts = h.alerts(ctx) }()
	go func() { defer wg.Done(); p.Events = h.events(ctx, 20) }()
	wg.Wait()
	// A tenant's operator may not list nodes (a cluster action): the
	// overview shows what they may see, and fails only when that is
	// nothing.
	switch {
	case errN != nil && errA != nil:
		h.fail(w, "list nodes and apps", errors.Join(errN, errA))
		return
	case errN != nil:
		p.Notes = append(p.Notes, "nodes: "+errN.Error())
	case errA != nil:
		p.Notes = append(p.Notes, "apps: "+errA.Error())
	}
	if errL != nil {
		p.Notes = append(p.Notes, "metrics: "+errL.Error())
	}
	p.Nodes = h.nodeRows(ctx, nodes, latest, now)
	for _, a := range apps {
		p.Apps = append(p.Apps, appRow{App: a, Href: "/apps/" + url.PathEscape(a.Name), OK: a.Ready >= a.Desired})
	}
	h.render(w, http.StatusOK, "overview", p)
}

// nodeRows reads each node's last day and draws its sparklines.
func (h *Handler) nodeRows(ctx context.Context, nodes []masterapi.Node, latest []masterapi.Latest, now time.Time) []nodeRow {
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	newest := map[string]masterapi.Latest{}
	for _, l := range latest {
		if l.Kind == masterapi.MetricsNode {
			newest[l.Name] = l
		}
	}
	rows := make([]nodeRow, len(nodes))
	sem := make(chan struct{}, sparkFetchers)
	var wg sync.WaitGroup
	for i, n := range nodes {
		rows[i] = nodeRow{Node: n, Href: "/nodes/" + url.PathEscape(n.Name)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			m, err := h.c.MetricsHistory(ctx, masterapi.MetricsQuery{Kind: masterapi.MetricsNode, Name: n.Name,
				Since: now.Add(-sparkSpan), Until: now, Step: time.Hour, Points: sparkPoints})
			if err != nil {
				m = masterapi.Metrics{}
			}
			l, ok := newest[n.Name]
			cpus := float64(n.Info.CPUs)
			rows[i].CPU = newSpark("CPU", m, "cpu", "", cpus, l, ok)
			rows[i].Mem = newSpark("memory", m, "mem_used", "mem_total", 0, l, ok)
			rows[i].Disk = newSpark("disk", m, "disk_used", "disk_total", 0, l, ok)
		}()
	}
	wg.Wait()
	return rows
}

// A sparkline is a node's last day, an hour a step, as a share of its
// capacity.
const (
	sparkSpan   = 24 * time.Hour
	sparkPoints = 26
	sparkW      = 100
	sparkH      = 20
)

// spark is one sparkline: the path of a share (0–1) over the last day and
// the newest share as a percentage.
type spark struct {
	What  string
	Path  string
	Now   string
	Level string // ok, warn, high: how full it is now
}

// newSpark draws field as a share of total (a field's values, or a fixed
// capacity when totalField is "") and reads the newest share from the
// master's latest sample, else from the history.
func newSpark(what string, m masterapi.Metrics, field, totalField string, capacity float64, l masterapi.Latest, haveLatest bool) spark {
	used := floats(m.Avg, fieldIndex(m, field))
	total := floats(m.Avg, fieldIndex(m, totalField))
	share := func(i int) float64 {
		c := capacity
		if totalField != "" {
			c = at(total, i)
		}
		if c <= 0 || math.IsNaN(c) {
			return math.NaN()
		}
		return at(used, i) / c
	}
	shares := make([]float64, len(used))
	cur := math.NaN()
	for i := range used {
		shares[i] = share(i)
		if !math.IsNaN(shares[i]) {
			cur = shares[i]
		}
	}
	if haveLatest {
		c := capacity
		if totalField != "" {
			c = l.Value(totalField)
		}
		if v := l.Value(field); c > 0 && !math.IsNaN(v) {
			cur = v / c
		}
	}
	s := spark{What: what, Path: sparkPath(shares), Now: "–", Level: "ok"}
	if !math.IsNaN(cur) {
		s.Now = strconv.Itoa(int(math.Round(cur*100))) + "%"
		switch {
		case cur >= 0.9:
			s.Level = "high"
		case cur >= 0.75:
			s.Level = "warn"
		}
	}
	return s
}

// sparkPath draws shares (clamped to 0–1) across sparkW×sparkH, breaking
// the line where a share is unknown; a lone known share is a short dash.
func sparkPath(shares []float64) string {
	var b []byte
	run := 0
	dx := float64(sparkW) / float64(max(1, len(shares)-1))
	dash := func() {
		if run == 1 {
			b = append(b, "h2"...)
		}
	}
	for i, v := range shares {
		if math.IsNaN(v) {
			dash()
			run = 0
			continue
		}
		v = math.Max(0, math.Min(1, v))
		cmd := byte('L')
		if run == 0 {
			cmd = 'M'
		}
		b = append(b, cmd)
		b = strconv.AppendFloat(b, round1(math.Min(float64(i)*dx, sparkW-2)), 'f', -1, 64)
		b = append(b, ' ')
		b = strconv.AppendFloat(b, round1(sparkH-v*(sparkH-2)-1), 'f', -1, 64)
		run++
	}
	dash()
	return string(b)
}
