package ui

import (
	"context"
	"net/url"
	"sort"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

type alertRow struct {
	masterapi.Alert
	Href string // the thing it is about
}

type eventRow struct {
	masterapi.Event
	Href string
}

// alerts reads the alerts firing now, worst first.
func (h *Handler) alerts(ctx context.Context) feed[alertRow] {
	l, err := h.c.Alerts(ctx)
	if err != nil {
		return feed[alertRow]{Note: "alerts: " + err.Error()}
	}
	sort.SliceStable(l.Active, func(i, j int) bool {
		a, b := l.Active[i], l.Active[j]
		if a.Severity != b.Severity {
			return a.Severity == "critical"
		}
		return a.Fired.After(b.Fired)
	})
	var f feed[alertRow]
	for _, a := range l.Active {
		f.Items = append(f.Items, alertRow{Alert: a, Href: thingHref(a.Node, a.App)})
	}
	return f
}

// events reads the newest n events of the log (of one app or node when
// q names it), newest first.
func (h *Handler) events(ctx context.Context, n int, q ...masterapi.EventQuery) feed[eventRow] {
	query := masterapi.EventQuery{Limit: n}
	if len(q) > 0 {
		query = q[0]
		query.Limit = n
	}
	evs, err := h.c.Events(ctx, query)
	if err != nil {
		return feed[eventRow]{Note: "events: " + err.Error()}
	}
	var f feed[eventRow]
	for i := len(evs) - 1; i >= 0; i-- {
		f.Items = append(f.Items, eventRow{Event: evs[i], Href: thingHref(evs[i].Node, evs[i].App)})
	}
	return f
}

// thingHref links to an app's page, else a node's.
func thingHref(node, app string) string {
	switch {
	case app != "":
		return "/apps/" + url.PathEscape(app)
	case node != "":
		return "/nodes/" + url.PathEscape(node)
	}
	return ""
}

// logTail reads the newest lines of an app's replicas, merged by time.
func (h *Handler) logTail(ctx context.Context, app string, n int) ([]masterapi.LogLine, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var lines []masterapi.LogLine
	err := h.c.Logs(ctx, app, nodeapi.LogOptions{Tail: n}, func(l masterapi.LogLine) error {
		lines = append(lines, l)
		return nil
	})
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, err
}
