package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
)

// fakeMaster answers the master API routes the dashboard reads, from
// fixed data; the browser tests use a real master, this serves the
// handler's unit tests and the benchmarks (whose history comes from a
// real archive store).
type fakeMaster struct {
	nodes     []masterapi.Node
	apps      []masterapi.App
	replicas  []masterapi.Replica
	revisions map[string][]masterapi.Revision
	logs      map[string][]masterapi.LogLine
	events    []masterapi.Event
	alerts    masterapi.AlertList
	latest    []masterapi.Latest
	history   func(masterapi.MetricsQuery) (masterapi.Metrics, error)
	noFeeds   bool // a master without the events and alerts routes
	noNodes   bool // a caller who may not list nodes
}

// client serves f on a unix socket for the test and returns a client.
func (f *fakeMaster) client(tb testing.TB) *masterapi.Client {
	tb.Helper()
	sock := filepath.Join(tb.TempDir(), "master.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: f.mux()}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return masterapi.UnixClient(sock)
}

func (f *fakeMaster) mux() *http.ServeMux {
	m := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(errs.HTTPStatus(err))
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(v)
	}
	m.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) { reply(w, map[string]string{}, nil) })
	m.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		if f.noNodes {
			reply(w, nil, fmt.Errorf("node.ls: %w", errs.ErrForbidden))
			return
		}
		reply(w, f.nodes, nil)
	})
	m.HandleFunc("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) { reply(w, f.apps, nil) })
	m.HandleFunc("GET /v1/replicas", func(w http.ResponseWriter, r *http.Request) {
		app := r.URL.Query().Get("app")
		out := []masterapi.Replica{}
		for _, rep := range f.replicas {
			if app == "" || rep.App == app {
				out = append(out, rep)
			}
		}
		reply(w, out, nil)
	})
	m.HandleFunc("GET /v1/apps/{app}/revisions", func(w http.ResponseWriter, r *http.Request) {
		reply(w, f.revisions[r.PathValue("app")], nil)
	})
	m.HandleFunc("GET /v1/apps/{app}/logs", func(w http.ResponseWriter, r *http.Request) {
		enc := json.NewEncoder(w)
		for _, l := range f.logs[r.PathValue("app")] {
			enc.Encode(l)
		}
	})
	m.HandleFunc("GET /v1/metrics/latest", func(w http.ResponseWriter, r *http.Request) { reply(w, f.latest, nil) })
	m.HandleFunc("GET /v1/metrics/{kind}/{name}", func(w http.ResponseWriter, r *http.Request) {
		if f.history == nil {
			reply(w, nil, errs.ErrNotFound)
			return
		}
		q, err := parseQuery(r)
		if err != nil {
			reply(w, nil, err)
			return
		}
		m, err := f.history(q)
		reply(w, m, err)
	})
	if !f.noFeeds {
		m.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) { reply(w, f.events, nil) })
		m.HandleFunc("GET /v1/alerts", func(w http.ResponseWriter, r *http.Request) { reply(w, f.alerts, nil) })
	}
	return m
}

// parseQuery reads a history query as the master does.
func parseQuery(r *http.Request) (masterapi.MetricsQuery, error) {
	v := r.URL.Query()
	q := masterapi.MetricsQuery{Kind: r.PathValue("kind"), Name: r.PathValue("name")}
	var err, e error
	if s := v.Get("since"); s != "" {
		q.Since, e = time.Parse(time.RFC3339, s)
		err = errors.Join(err, e)
	}
	if s := v.Get("until"); s != "" {
		q.Until, e = time.Parse(time.RFC3339, s)
		err = errors.Join(err, e)
	}
	if s := v.Get("step"); s != "" {
		q.Step, e = time.ParseDuration(s)
		err = errors.Join(err, e)
	}
	if s := v.Get("points"); s != "" {
		q.Points, e = strconv.Atoi(s)
		err = errors.Join(err, e)
	}
	if err != nil {
		return q, errs.Invalid("query", "%v", err)
	}
	return q, nil
}
