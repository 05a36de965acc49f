package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/wire"
)

func (s *server) appRoutes(handle handleFunc) {
	handle("POST /v1/apps", s.deploy)
	handle("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) error {
		apps, err := s.cp.Apps(r.Context())
		return reply(w, apps, err)
	})
	handle("DELETE /v1/apps/{app}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, s.cp.RemoveApp(r.Context(), r.PathValue("app"), actor(r)))
	})
	handle("GET /v1/apps/{app}/revisions", func(w http.ResponseWriter, r *http.Request) error {
		revs, err := s.cp.Revisions(r.Context(), r.PathValue("app"))
		return reply(w, revs, err)
	})
	handle("GET /v1/apps/{app}/revisions/{rev}/progress", s.progress)
	handle("POST /v1/apps/{app}/scale", s.scale)
	handle("POST /v1/apps/{app}/rollback", s.rollback)
	handle("POST /v1/apps/{app}/promote", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, s.cp.Promote(r.Context(), r.PathValue("app"), actor(r)))
	})
	handle("GET /v1/apps/{app}/logs", s.logs)
	handle("POST /v1/apps/{app}/dial", s.dialApp)
	handle("GET /v1/replicas", func(w http.ResponseWriter, r *http.Request) error {
		reps, err := s.cp.Replicas(r.Context(), r.URL.Query().Get("app"))
		return reply(w, reps, err)
	})
}

func (s *server) deploy(w http.ResponseWriter, r *http.Request) error {
	var req masterapi.DeployRequest
	if err := wire.Decode(r.Body, &req); err != nil {
		return err
	}
	resp, err := s.cp.Deploy(r.Context(), []byte(req.Spec), req.File, actor(r))
	if err != nil {
		return err
	}
	return wire.WriteJSON(w, http.StatusCreated, resp)
}

func (s *server) scale(w http.ResponseWriter, r *http.Request) error {
	var req masterapi.ScaleRequest
	if err := wire.Decode(r.Body, &req); err != nil {
		return err
	}
	resp, err := s.cp.Scale(r.Context(), r.PathValue("app"), req.Replicas, actor(r))
	return reply(w, resp, err)
}

func (s *server) rollback(w http.ResponseWriter, r *http.Request) error {
	var req masterapi.RollbackRequest
	if err := wire.Decode(r.Body, &req); err != nil {
		return err
	}
	resp, err := s.cp.Rollback(r.Context(), r.PathValue("app"), req.Revision, actor(r))
	return reply(w, resp, err)
}

// progress answers a revision's progress; with ?watch=true it streams a
// line on every change until the rollout is over.
func (s *server) progress(w http.ResponseWriter, r *http.Request) error {
	rev, err := strconv.Atoi(r.PathValue("rev"))
	if err != nil {
		return errs.Invalid("revision", "%q is not a number", r.PathValue("rev"))
	}
	app := r.PathValue("app")
	if r.URL.Query().Get("watch") != "true" {
		p, err := s.cp.Progress(r.Context(), app, rev)
		return reply(w, p, err)
	}
	return s.watchProgress(w, r, app, rev)
}

// watchProgress streams the progress as JSON lines. Until the first line
// an error is the response's status; after it, a last line says the
// rollout failed, and why.
func (s *server) watchProgress(w http.ResponseWriter, r *http.Request, app string, rev int) error {
	flusher, _ := w.(http.Flusher)
	var enc *json.Encoder
	var gone error // the client's, when writing to it failed
	err := s.cp.WatchProgress(r.Context(), app, rev, func(p masterapi.Progress) error {
		if enc == nil {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			enc = json.NewEncoder(w)
		}
		if gone = enc.Encode(p); gone != nil {
			return gone
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if enc == nil {
		return err
	}
	if err != nil && gone == nil && r.Context().Err() == nil {
		enc.Encode(masterapi.Progress{App: app, Revision: rev, Status: "failed", Message: err.Error()})
	}
	return nil
}

// logs merges the logs of an app's replicas into one stream of JSON
// lines, each naming its replica.
func (s *server) logs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := nodeapi.LogOptions{Follow: q.Get("follow") == "true", Tail: -1, Since: q.Get("since")}
	if t := q.Get("tail"); t != "" {
		var err error
		if opts.Tail, err = strconv.Atoi(t); err != nil || opts.Tail < 0 {
			return errs.Invalid("query tail", "%q: want a number of lines", t)
		}
	}
	lines, err := s.cp.Logs(r.Context(), r.PathValue("app"), opts)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for l := range lines {
		if err := enc.Encode(l); err != nil {
			return nil
		}
		if flusher != nil && len(lines) == 0 {
			flusher.Flush()
		}
	}
	return nil
}
