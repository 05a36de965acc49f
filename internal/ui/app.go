package ui

import (
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
)

// appPage is one app: replicas, revisions, the tail of its logs, graphs.
type appPage struct {
	Title     string
	Now       time.Time
	App       masterapi.App
	Replicas  []replicaRow
	Revisions []masterapi.Revision
	Logs      []masterapi.LogLine
	Views     viewLinks
	Graphs    []svgGraph
	Routes    []routeGraphs
	Events    feed[eventRow]
	Notes     []string
}

// routeGraphs are the graphs of one of an app's edge routes.
type routeGraphs struct {
	Host   string
	Graphs []svgGraph
}

// logLines is how many of an app's newest log lines its page shows.
const logLines = 100

func (h *Handler) app(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	name := r.PathValue("name")
	sp := parseSpan(r.URL.Query().Get("range"))
	now := h.now()
	apps, err := h.c.Apps(ctx)
	if err != nil {
		h.fail(w, "list apps", err)
		return
	}
	p := appPage{Title: "App " + name, Now: now}
	found := false
	for _, a := range apps {
		if a.Name == name {
			p.App, found = a, true
		}
	}
	if !found {
		h.fail(w, "app "+name, errs.ErrNotFound)
		return
	}
	p.Views = views("/apps/"+url.PathEscape(name), sp)
	note := func(what string, err error) {
		if err != nil {
			p.Notes = append(p.Notes, what+": "+err.Error())
		}
	}
	reps, err := h.c.Replicas(ctx, name)
	note("replicas", err)
	latest, err := h.c.MetricsLatest(ctx)
	note("metrics", err)
	p.Replicas = replicaRows(reps, latest)
	p.Revisions, err = h.c.Revisions(ctx, name)
	note("revisions", err)
	sort.Slice(p.Revisions, func(i, j int) bool { return p.Revisions[i].Revision > p.Revisions[j].Revision })
	p.Logs, err = h.logTail(ctx, name, logLines)
	note("logs", err)
	m, err := h.history(ctx, masterapi.MetricsApp, name, sp, now)
	note("history", err)
	p.Graphs = drawAll(appGraphs, m, sp, now, "/graphs/app/"+url.PathEscape(name)+"/")
	for _, l := range latest {
		if l.Kind != masterapi.MetricsRoute || l.App != name {
			continue
		}
		m, err := h.history(ctx, masterapi.MetricsRoute, l.Name, sp, now)
		note("route "+l.Name, err)
		p.Routes = append(p.Routes, routeGraphs{Host: l.Name, Graphs: drawAll(routeGraphDefs, m, sp, now, "/graphs/route/"+url.PathEscape(l.Name)+"/")})
	}
	sort.Slice(p.Routes, func(i, j int) bool { return p.Routes[i].Host < p.Routes[j].Host })
	p.Events = h.events(ctx, 20, masterapi.EventQuery{App: name})
	h.render(w, http.StatusOK, "app", p)
}
