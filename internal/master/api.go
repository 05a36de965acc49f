package master

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"reflect"
	"strconv"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/wire"
)

// routes is the master's API, under /v1, on its unix socket.
func (m *Master) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil && wire.WriteError(w, err) {
				m.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
		})
	}
	handle("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) error {
		return wire.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	handle("POST /v1/apps", m.handleDeploy)
	handle("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) error {
		apps, err := m.Apps(r.Context())
		return reply(w, apps, err)
	})
	handle("DELETE /v1/apps/{app}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, m.RemoveApp(r.Context(), r.PathValue("app"), actor(r)))
	})
	handle("GET /v1/apps/{app}/revisions", func(w http.ResponseWriter, r *http.Request) error {
		revs, err := m.Revisions(r.Context(), r.PathValue("app"))
		return reply(w, revs, err)
	})
	handle("GET /v1/apps/{app}/revisions/{rev}/progress", m.handleProgress)
	handle("POST /v1/apps/{app}/scale", m.handleScale)
	handle("POST /v1/apps/{app}/rollback", m.handleRollback)
	handle("POST /v1/apps/{app}/promote", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, m.Promote(r.Context(), r.PathValue("app"), actor(r)))
	})
	handle("GET /v1/apps/{app}/logs", m.handleLogs)
	handle("GET /v1/replicas", func(w http.ResponseWriter, r *http.Request) error {
		reps, err := m.Replicas(r.Context(), r.URL.Query().Get("app"))
		return reply(w, reps, err)
	})
	m.nodeRoutes(handle)
	m.imageRoutes(handle)
	m.gcRoutes(handle)
	// The Go profiler, for operators chasing the master's CPU or memory:
	// curl --unix-socket /run/moat/master.sock http://m/debug/pprof/heap
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteError(w, errs.Invalid("", "no API at %s %s", r.Method, r.URL.Path))
	})
	return mux
}

type handleFunc = func(string, func(http.ResponseWriter, *http.Request) error)

func reply(w http.ResponseWriter, v any, err error) error {
	if err != nil {
		return err
	}
	return wire.WriteJSON(w, http.StatusOK, v)
}

func replyNone(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// actor names who asked, for the audit log. Over the local socket that is
// root; moat api (later) passes the SSH user's name.
func actor(r *http.Request) string {
	if a := r.Header.Get("Moat-Actor"); a != "" {
		return a
	}
	return "root"
}

func (m *Master) handleDeploy(w http.ResponseWriter, r *http.Request) error {
	var req masterapi.DeployRequest
	if err := wire.Decode(r.Body, &req); err != nil {
		return err
	}
	resp, err := m.Deploy(r.Context(), []byte(req.Spec), req.File, actor(r))
	if err != nil {
		return err
	}
	return wire.WriteJSON(w, http.StatusCreated, resp)
}

func (m *Master) handleScale(w http.ResponseWriter, r *http.Request) error {
	var req masterapi.ScaleRequest
	if err := wire.Decode(r.Body, &req); err != nil {
		return err
	}
	resp, err := m.Scale(r.Context(), r.PathValue("app"), req.Replicas, actor(r))
	return reply(w, resp, err)
}

func (m *Master) handleRollback(w http.ResponseWriter, r *http.Request) error {
	var req masterapi.RollbackRequest
	if err := wire.Decode(r.Body, &req); err != nil {
		return err
	}
	resp, err := m.Rollback(r.Context(), r.PathValue("app"), req.Revision, actor(r))
	return reply(w, resp, err)
}

// handleProgress answers a revision's progress; with ?watch=true it
// streams a line on every change until the rollout is over.
func (m *Master) handleProgress(w http.ResponseWriter, r *http.Request) error {
	rev, err := strconv.Atoi(r.PathValue("rev"))
	if err != nil {
		return errs.Invalid("revision", "%q is not a number", r.PathValue("rev"))
	}
	app := r.PathValue("app")
	p, err := m.Progress(r.Context(), app, rev)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("watch") != "true" {
		return wire.WriteJSON(w, http.StatusOK, p)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	var last masterapi.Progress
	for {
		if !reflect.DeepEqual(p, last) {
			if err := enc.Encode(p); err != nil {
				return nil
			}
			if flusher != nil {
				flusher.Flush()
			}
			last = p
		}
		if p.Terminal() {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
		if p, err = m.Progress(r.Context(), app, rev); err != nil {
			enc.Encode(masterapi.Progress{App: app, Revision: rev, Status: "failed", Message: err.Error()})
			return nil
		}
	}
}
