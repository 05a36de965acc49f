package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// rootOnly are the routes only root on the node may call. Every route is
// in exactly one of masterRoutes and rootOnly: a new route must be given
// to a role on purpose.
var rootOnly = map[string]bool{
	"POST /v1/images/import":         true,
	"DELETE /v1/images/{ref...}":     true,
	"POST /v1/containers/{id}/debug": true,
	"GET /v1/links":                  true, // the master sends tables, never reads them back
}

func TestEveryRouteHasARole(t *testing.T) {
	var d *Daemon // only the table is read
	seen := map[string]bool{}
	for _, rt := range d.routeTable() {
		seen[rt.pattern] = true
		if masterRoutes[rt.pattern] == rootOnly[rt.pattern] {
			t.Errorf("%s: in masterRoutes %v, in rootOnly %v; want exactly one", rt.pattern, masterRoutes[rt.pattern], rootOnly[rt.pattern])
		}
	}
	for p := range masterRoutes {
		if !seen[p] {
			t.Errorf("masterRoutes lists %s, which is no route", p)
		}
	}
}

func TestMayCall(t *testing.T) {
	tests := []struct {
		role, pattern string
		want          bool
	}{
		{nodeapi.RoleRoot, "POST /v1/containers/{id}/debug", true},
		{nodeapi.RoleRoot, "POST /v1/images/import", true},
		{nodeapi.RoleMaster, "POST /v1/containers/{id}/debug", false},
		{nodeapi.RoleMaster, "POST /v1/images/import", false},
		{nodeapi.RoleMaster, "DELETE /v1/images/{ref...}", false},
		{nodeapi.RoleMaster, "POST /v1/containers", true},
		{nodeapi.RoleMaster, "GET /v1/events", true},
		{nodeapi.RoleMaster, "POST /v1/images/pull", true},
		{"peer", "GET /v1/ping", false},
		{"", "GET /v1/ping", false},
	}
	for _, tt := range tests {
		if got := mayCall(tt.role, tt.pattern); got != tt.want {
			t.Errorf("mayCall(%q, %q) = %v, want %v", tt.role, tt.pattern, got, tt.want)
		}
	}
}

// TestForRoleRefusesBeforeTheHandler: a refused route never reaches its
// handler, and the answer names the route and the role.
func TestForRoleRefusesBeforeTheHandler(t *testing.T) {
	d := &Daemon{log: slog.New(slog.DiscardHandler)}
	reached := map[string]string{}
	mux := http.NewServeMux()
	for _, p := range []string{"POST /v1/containers/{id}/debug", "GET /v1/containers"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { reached[p] = roleOf(r.Context()) })
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) })

	serve := func(role, method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		d.forRole(mux, role).ServeHTTP(w, httptest.NewRequest(method, path, bytes.NewReader(nil)))
		return w
	}
	w := serve(nodeapi.RoleMaster, "POST", "/v1/containers/web/debug")
	var body struct{ Error string }
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusForbidden || !strings.Contains(body.Error, "POST /v1/containers/{id}/debug") || !strings.Contains(body.Error, "master") {
		t.Errorf("master debug: %d %q; want 403 naming the route and the role", w.Code, body.Error)
	}
	if _, ok := reached["POST /v1/containers/{id}/debug"]; ok {
		t.Error("the refused handler ran")
	}
	// Path tricks resolve to the same pattern before the check.
	if w := serve(nodeapi.RoleMaster, "POST", "/v1/containers/web/../web/debug"); w.Code == http.StatusOK {
		t.Errorf("master debug through a dotted path: %d", w.Code)
	}
	if w := serve(nodeapi.RoleMaster, "GET", "/v1/containers"); w.Code != http.StatusOK || reached["GET /v1/containers"] != nodeapi.RoleMaster {
		t.Errorf("master list: %d, role seen %q", w.Code, reached["GET /v1/containers"])
	}
	if w := serve(nodeapi.RoleRoot, "POST", "/v1/containers/web/debug"); w.Code != http.StatusOK || reached["POST /v1/containers/{id}/debug"] != nodeapi.RoleRoot {
		t.Errorf("root debug: %d", w.Code)
	}
}
