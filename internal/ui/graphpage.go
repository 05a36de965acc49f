package ui

import (
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
)

// graphPage is MRTG's page of one graph: its day, week, month and year.
type graphPage struct {
	Title  string
	Now    time.Time
	Back   string
	Graphs []svgGraph
	Notes  []string
}

func (h *Handler) graph(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	kind, name := r.PathValue("kind"), r.PathValue("name")
	if kind != masterapi.MetricsNode && kind != masterapi.MetricsApp && kind != masterapi.MetricsRoute {
		h.fail(w, "graph", errs.Invalid("kind", "%q: want node, app or route", kind))
		return
	}
	def, ok := findGraph(kind, r.PathValue("graph"))
	if !ok {
		h.fail(w, "graph "+r.PathValue("graph"), errs.ErrNotFound)
		return
	}
	now := h.now()
	p := graphPage{Title: def.Title + " of " + kind + " " + name, Now: now, Back: "/" + kind + "s/" + url.PathEscape(name)}
	if kind == masterapi.MetricsRoute {
		p.Back = "/" // a route has no page of its own: its app's lists it
	}
	p.Graphs = make([]svgGraph, len(spans))
	errors := make([]error, len(spans))
	var wg sync.WaitGroup
	for i, sp := range spans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := h.history(ctx, kind, name, sp, now)
			errors[i] = err
			g := draw(def.build(m, sp, now), graphW, graphH)
			g.Title = viewTitle[sp]
			p.Graphs[i] = g
		}()
	}
	wg.Wait()
	for i, err := range errors {
		if err != nil {
			p.Notes = append(p.Notes, string(spans[i])+": "+err.Error())
		}
	}
	h.render(w, http.StatusOK, "graph", p)
}

var viewTitle = map[span]string{
	day:   "Daily (5 minute average)",
	week:  "Weekly (30 minute average)",
	month: "Monthly (2 hour average)",
	year:  "Yearly (1 day average)",
}
