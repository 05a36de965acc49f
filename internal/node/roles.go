package node

import (
	"context"
	"fmt"
	"net/http"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// masterRoutes are the API routes the master's key may call, as ServeMux
// patterns: where and when signed software runs, what it logs, what the
// node has. Not among them: debugging a container (root's: the operator's
// own SSH), importing an archive or deleting an image by hand (root's: the
// master delivers images as signed blobs and collects them with GC).
var masterRoutes = map[string]bool{
	"GET /v1/ping":                    true,
	"GET /v1/info":                    true,
	"GET /v1/audit":                   true,
	"GET /v1/events":                  true,
	"POST /v1/lease":                  true,
	"GET /v1/containers":              true,
	"POST /v1/containers":             true,
	"GET /v1/containers/{id}":         true,
	"POST /v1/containers/{id}/start":  true,
	"POST /v1/containers/{id}/stop":   true,
	"DELETE /v1/containers/{id}":      true,
	"GET /v1/containers/{id}/logs":    true,
	"PUT /v1/containers/{id}/secrets": true, // envelopes only: the node checks each is bound to the image's app
	"GET /v1/images":                  true,
	"GET /v1/images/{ref...}":         true,
	"POST /v1/blobs/missing":          true,
	"POST /v1/blobs/fetch":            true,
	"POST /v1/images/pull":            true,
	"POST /v1/signatures/{ref...}":    true,
	"PUT /v1/images/keep":             true,
	"POST /v1/images/gc":              true,
	// Links: the master may already dial any declared port, and a link
	// reaches only declared ports of the target's replicas.
	"PUT /v1/links": true,
	// The edges' certificate cache: sealed with the operator's key, bound
	// to each name's hash; the master carries entries it cannot open or
	// forge (edge_cache.go).
	"GET /v1/edge/cache/outbox": true,
	"PUT /v1/edge/cache":        true,
	// The node's own numbers (load, memory, its containers' use, its
	// routes' request counts): nothing secret, and the master pulls them
	// into its history (metrics.go).
	"GET /v1/metrics": true,
	// A pool node's one-time host key, which the master put in the user
	// data it created the server with, replaced once by a key the node
	// generates (hostkey.go); refused for any other key.
	"POST /v1/hostkey": true,
}

// mayCall says whether a role may call the route with this pattern. Root
// may call everything. Pure.
func mayCall(role, pattern string) bool {
	switch role {
	case nodeapi.RoleRoot:
		return true
	case nodeapi.RoleMaster:
		return masterRoutes[pattern]
	}
	return false
}

type roleKey struct{}

// withRole records on a request's context who is calling: set by the
// listener the request came in on, never by anything in the request.
func withRole(ctx context.Context, role string) context.Context {
	return context.WithValue(ctx, roleKey{}, role)
}

// roleOf is the caller's role; a request without one (a test calling a
// handler directly) is the master's, the least trusted.
func roleOf(ctx context.Context) string {
	if r, ok := ctx.Value(roleKey{}).(string); ok {
		return r
	}
	return nodeapi.RoleMaster
}

// forRole serves mux to one role: a route the role may not call is
// refused with 403, naming the route and the role, before its handler
// runs. A request no route matches goes on to the mux, which says so.
func (d *Daemon) forRole(mux *http.ServeMux, role string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern != "" && pattern != "/" && !mayCall(role, pattern) {
			err := fmt.Errorf("%s is for root on the node only; the %s's key may not call it: %w", pattern, role, errs.ErrForbidden)
			d.log.Warn("request refused", "role", role, "method", r.Method, "path", r.URL.Path)
			d.writeError(w, r, err)
			return
		}
		mux.ServeHTTP(w, r.WithContext(withRole(r.Context(), role)))
	})
}
