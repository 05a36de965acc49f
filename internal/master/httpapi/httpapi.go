// Package httpapi is the master's HTTP API, under /v1 on its unix socket:
// it turns requests into calls on the control plane and the answers back
// into responses. It owns the routing, the decoding of requests and
// queries, the status codes (through errs' kinds), JSON-lines streams,
// the HTTP upgrade of dial, who made a request (the caller), the audit log, authorisation, and Go's
// profiler; the control plane (package master) decides everything else.
package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/wire"
)

// ControlPlane is what the API asks of the master.
type ControlPlane interface {
	AppControl
	NodeControl
	ImageControl
	BlobControl
	SecretControl
	TenantControl
	UserControl
	RoleControl
	AuditControl
	EventControl
	AlertControl
	MetricsControl
	PoolControl
	AutoscalerControl
}

// AppControl is apps: their rollouts, replicas, logs and ports.
type AppControl interface {
	Deploy(ctx context.Context, yaml []byte, file, actor string) (masterapi.DeployResponse, error)
	Scale(ctx context.Context, app string, replicas int, actor string) (masterapi.DeployResponse, error)
	Rollback(ctx context.Context, app string, to int, actor string) (masterapi.DeployResponse, error)
	Promote(ctx context.Context, app, actor string) error
	RemoveApp(ctx context.Context, app, actor string) error
	Apps(ctx context.Context) ([]masterapi.App, error)
	Revisions(ctx context.Context, app string) ([]masterapi.Revision, error)
	Progress(ctx context.Context, app string, rev int) (masterapi.Progress, error)
	// WatchProgress calls fn with the progress and each change of it
	// until the rollout is over (and returns nil), or returns why not.
	WatchProgress(ctx context.Context, app string, rev int, fn func(masterapi.Progress) error) error
	ProgressStats() masterapi.ProgressStats
	Replicas(ctx context.Context, app string) ([]masterapi.Replica, error)
	// Logs returns the app's replicas' lines, merged; the channel is
	// closed when every replica's stream ended, or ctx did.
	Logs(ctx context.Context, app string, opts nodeapi.LogOptions) (<-chan masterapi.LogLine, error)
	// DialApp opens a connection to a port of one of the app's replicas.
	DialApp(ctx context.Context, app string, port int) (net.Conn, error)
}

// NodeControl is the nodes and the master's keys.
type NodeControl interface {
	Nodes(ctx context.Context) ([]masterapi.Node, error)
	RegisterNode(ctx context.Context, n inventory.Node, actor string) error
	RemoveNode(ctx context.Context, name, actor string) error
	// Cordon cordons, uncordons or drains (verb) a node.
	Cordon(ctx context.Context, name, verb, actor string) error
	NodeAudit(ctx context.Context, name string) (nodeapi.AuditReport, error)
	// DialNode opens a connection to a container's port on a node.
	DialNode(ctx context.Context, node, container string, port int) (net.Conn, error)
	Key() masterapi.Key
}

// ImageControl is the master's image store, and garbage collection there
// and on nodes.
type ImageControl interface {
	Images(ctx context.Context) ([]masterapi.Image, error)
	ImportImage(ctx context.Context, archive io.Reader, name, actor string) ([]nodeapi.Image, error)
	Image(ref string) (nodeapi.Image, error)
	SignImage(ctx context.Context, ref string, signature []byte, actor string) (nodeapi.Image, error)
	RemoveImage(ctx context.Context, ref string) error
	GC(ctx context.Context, req masterapi.GCRequest, actor string) ([]masterapi.GCReport, error)
	Stats() masterapi.Stats
}

type server struct {
	cp  ControlPlane
	log *slog.Logger
	// callerOf establishes who made a request (see caller.go).
	callerOf func(*http.Request) (access.Caller, error)
}

// Handler serves the master's API with cp; failures of the master's own
// (status 500 and up) are logged to log.
func Handler(cp ControlPlane, log *slog.Logger) http.Handler {
	s := &server{cp: cp, log: log, callerOf: localCaller}
	return s.handler()
}

// handler is the routes, each asking s.callerOf who made the request.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	// Every route: who is asking, then the audit log (for mutating
	// requests, allowed or not), then whether they may.
	handle := func(pattern string, h handler) {
		h = s.withCaller(s.audited(pattern, s.authorized(pattern, h)))
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil && wire.WriteError(w, err) {
				s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
		})
	}
	handle("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) error {
		return wire.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	s.appRoutes(handle)
	s.nodeRoutes(handle)
	s.imageRoutes(handle)
	s.blobRoutes(handle)
	s.secretRoutes(handle)
	s.tenantRoutes(handle)
	s.userRoutes(handle)
	s.whoamiRoutes(handle)
	s.auditRoutes(handle)
	s.prometheusRoutes(handle)
	s.eventRoutes(handle)
	s.alertRoutes(handle)
	s.metricsRoutes(handle)
	s.poolRoutes(handle)
	s.autoscalerRoutes(handle)
	// The Go profiler, for operators chasing the master's CPU or memory:
	// curl --unix-socket /run/moat/master.sock http://m/debug/pprof/heap
	// Root's only, like /debug/progress (authz.go).
	handle("GET /debug/pprof/", plain(pprof.Index))
	handle("GET /debug/pprof/profile", plain(pprof.Profile))
	// What watching rollouts costs (a debugging aid, not /v1).
	handle("GET /debug/progress", func(w http.ResponseWriter, r *http.Request) error {
		return reply(w, s.cp.ProgressStats(), nil)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteError(w, errs.Invalid("", "no API at %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// handler serves a request; an error becomes the response (wire.WriteError).
type handler = func(http.ResponseWriter, *http.Request) error

type handleFunc = func(string, handler)

// plain is a handler of net/http's as one of ours.
func plain(f http.HandlerFunc) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		f(w, r)
		return nil
	}
}

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

// actor names who asked, for the control plane's own records.
func actor(r *http.Request) string {
	if c, ok := access.CallerFrom(r.Context()); ok {
		return c.User
	}
	return "root"
}
