package ui

import (
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
)

// nodePage is one node: its state, replicas and graphs.
type nodePage struct {
	Title    string
	Now      time.Time
	Node     masterapi.Node
	Replicas []replicaRow
	Views    viewLinks
	Graphs   []svgGraph
	Events   feed[eventRow]
	Notes    []string
}

type replicaRow struct {
	masterapi.Replica
	AppHref, NodeHref string
	CPU, Mem          string // newest sample
}

// viewLinks are the links to a page's day, week, month and year views.
type viewLinks struct {
	Current span
	Links   []viewLink
}

type viewLink struct {
	Name    span
	Href    string
	Current bool
}

func views(base string, cur span) viewLinks {
	v := viewLinks{Current: cur}
	for _, s := range spans {
		v.Links = append(v.Links, viewLink{Name: s, Href: base + "?range=" + string(s), Current: s == cur})
	}
	return v
}

func (h *Handler) node(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	name := r.PathValue("name")
	sp := parseSpan(r.URL.Query().Get("range"))
	now := h.now()
	nodes, err := h.c.Nodes(ctx)
	if err != nil {
		h.fail(w, "list nodes", err)
		return
	}
	p := nodePage{Title: "Node " + name, Now: now}
	found := false
	for _, n := range nodes {
		if n.Name == name {
			p.Node, found = n, true
		}
	}
	if !found {
		h.fail(w, "node "+name, errs.ErrNotFound)
		return
	}
	base := "/nodes/" + url.PathEscape(name)
	p.Views = views(base, sp)
	reps, err := h.c.Replicas(ctx, "")
	if err != nil {
		p.Notes = append(p.Notes, "replicas: "+err.Error())
	}
	latest, err := h.c.MetricsLatest(ctx)
	if err != nil {
		p.Notes = append(p.Notes, "metrics: "+err.Error())
	}
	var mine []masterapi.Replica
	for _, rep := range reps {
		if rep.Node == name {
			mine = append(mine, rep)
		}
	}
	p.Replicas = replicaRows(mine, latest)
	m, err := h.history(ctx, masterapi.MetricsNode, name, sp, now)
	if err != nil {
		p.Notes = append(p.Notes, "history: "+err.Error())
	}
	p.Graphs = drawAll(nodeGraphs, m, sp, now, "/graphs/node/"+url.PathEscape(name)+"/")
	p.Events = h.events(ctx, 20, masterapi.EventQuery{Node: name})
	h.render(w, http.StatusOK, "node", p)
}

// drawAll draws a thing's graphs for a view, each linking to its page of
// four views.
func drawAll(defs []graphDef, m masterapi.Metrics, sp span, now time.Time, link string) []svgGraph {
	var out []svgGraph
	for _, d := range defs {
		g := draw(d.build(m, sp, now), graphW, graphH)
		g.Link = link + d.ID
		out = append(out, g)
	}
	return out
}

// replicaRows joins replicas with their newest samples.
func replicaRows(reps []masterapi.Replica, latest []masterapi.Latest) []replicaRow {
	byID := map[string]masterapi.Latest{}
	for _, l := range latest {
		if l.Kind == masterapi.MetricsReplica {
			byID[l.Name] = l
		}
	}
	sort.Slice(reps, func(i, j int) bool {
		if reps[i].App != reps[j].App {
			return reps[i].App < reps[j].App
		}
		return reps[i].ID < reps[j].ID
	})
	var out []replicaRow
	for _, r := range reps {
		row := replicaRow{Replica: r, AppHref: "/apps/" + url.PathEscape(r.App), NodeHref: "/nodes/" + url.PathEscape(r.Node), CPU: "–", Mem: "–"}
		if l, ok := byID[r.ID]; ok {
			row.CPU = formatValue(l.Value("cpu"), "cores")
			row.Mem = formatValue(l.Value("mem"), "bytes")
		}
		out = append(out, row)
	}
	return out
}
