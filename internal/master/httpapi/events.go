package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
)

// EventControl is the master's event log.
type EventControl interface {
	// Events reads the log as the request's caller may see it: its
	// tenant's apps' events, and nodes' own when nodes.
	Events(ctx context.Context, q masterapi.EventQuery, nodes bool) ([]masterapi.Event, error)
	// FollowEvents calls fn with what Events answers, then with each new
	// event, until ctx ends (nil) or fn fails.
	FollowEvents(ctx context.Context, q masterapi.EventQuery, nodes bool, fn func(masterapi.Event) error) error
}

// The event log is read like the app listing: a tenant's viewer reads
// its apps' events; nodes' own events only a caller who may list nodes.
func init() {
	routeActions["GET /v1/events"] = access.AppList
}

func (s *server) eventRoutes(handle handleFunc) {
	handle("GET /v1/events", s.events)
}

// events answers the event log, or with ?follow=1 streams it as JSON
// lines: the events logged, then each new one.
func (s *server) events(w http.ResponseWriter, r *http.Request) error {
	q, err := eventQuery(r)
	if err != nil {
		return err
	}
	c, _ := access.CallerFrom(r.Context())
	_, nodesErr := s.allow(r.Context(), c, access.NodeList)
	nodes := nodesErr == nil
	if !q.Follow {
		events, err := s.cp.Events(r.Context(), q, nodes)
		if events == nil {
			events = []masterapi.Event{}
		}
		return reply(w, events, err)
	}
	// The query was checked (eventQuery): the stream opens at once, so
	// the client knows it follows before any event comes.
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	err = s.cp.FollowEvents(r.Context(), q, nodes, func(e masterapi.Event) error {
		if err := enc.Encode(e); err != nil {
			return errClientGone
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if err != nil && err != errClientGone && r.Context().Err() == nil {
		s.log.Error("following the event log failed", "err", err)
	}
	return nil
}

var errClientGone = errors.New("the client went away")

func eventQuery(r *http.Request) (masterapi.EventQuery, error) {
	v := r.URL.Query()
	q := masterapi.EventQuery{Since: v.Get("since"), App: v.Get("app"), Node: v.Get("node")}
	switch v.Get("follow") {
	case "", "0", "false":
	case "1", "true":
		q.Follow = true
	default:
		return q, errs.Invalid("query follow", "%q: want 1 or 0", v.Get("follow"))
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > masterapi.MaxEventLimit {
			return q, errs.Invalid("query limit", "%q: want 1 to %d events", l, masterapi.MaxEventLimit)
		}
		q.Limit = n
	}
	if a := v.Get("after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 0 {
			return q, errs.Invalid("query after", "%q: want an event ID", a)
		}
		q.After = n
	}
	if _, err := masterapi.ParseSince(q.Since, time.Now()); err != nil {
		return q, err
	}
	return q, nil
}
