package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/wire"
)

// roles is a control plane that knows users' roles and records who was
// looked up; anything else panics.
type roles struct {
	ControlPlane
	bindings map[string][]access.Binding
	err      error
	asked    []string
}

func (f *roles) Bindings(_ context.Context, user string) ([]access.Binding, error) {
	f.asked = append(f.asked, user)
	return f.bindings[user], f.err
}

// samplePath makes a path a route pattern matches: each wildcard a word.
func samplePath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	var b strings.Builder
	for {
		before, rest, ok := strings.Cut(path, "{")
		b.WriteString(before)
		if !ok {
			break
		}
		name, after, _ := strings.Cut(rest, "}")
		if strings.HasSuffix(name, "...") {
			b.WriteString("a/b")
		} else {
			b.WriteString("x" + name)
		}
		path = after
	}
	return method, b.String()
}

// TestEveryRouteHasAnAction: Handler registers no route without an
// action (it would panic), and every row of the table is a route it
// serves, under that very pattern, so the table holds nothing stale.
func TestEveryRouteHasAnAction(t *testing.T) {
	var h http.Handler
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("building the handler: %v", p)
			}
		}()
		h = Handler(&roles{}, slog.New(slog.DiscardHandler))
	}()
	mux := h.(*http.ServeMux)
	for pattern := range routeActions {
		method, path := samplePath(pattern)
		_, got := mux.Handler(httptest.NewRequest(method, path, nil))
		if got != pattern {
			t.Errorf("%s %s is served by %q; the table has %q", method, path, got, pattern)
		}
	}
}

// TestUnclassifiedRoutePanics: a route without an action is never served.
func TestUnclassifiedRoutePanics(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "GET /v1/new") {
			t.Errorf("recovered %v; want a panic naming the route", p)
		}
	}()
	s := &server{cp: &roles{}}
	s.authorized("GET /v1/new", func(http.ResponseWriter, *http.Request) error { return nil })
}

// TestAuthorized: the layer asks the caller's roles (only when they
// matter) and refuses with 403 before the route's handler runs.
func TestAuthorized(t *testing.T) {
	alice := access.Caller{User: "alice", Credential: "SHA256:x", Tenant: "shop"}
	other := alice
	other.Tenant = "blog"
	cp := map[string][]access.Binding{
		"alice": {{Tenant: "shop", Role: access.Viewer}},
		"root2": {{Tenant: "*", Role: access.Admin}},
	}
	root2 := access.Caller{User: "root2", Tenant: "shop"}
	tests := []struct {
		name      string
		caller    *access.Caller
		route     string
		lookupErr error
		want      int
		wantBody  string
		wantAsked []string
	}{
		{"viewer reads", &alice, "GET /v1/apps", nil, 200, "", []string{"alice"}},
		{"viewer deploys", &alice, "POST /v1/apps", nil, 403, `user alice: app.deploy in tenant \"shop\" needs deployer or admin there; you have viewer on shop`, []string{"alice"}},
		{"viewer reads another tenant", &other, "GET /v1/apps", nil, 403, `tenant \"blog\"`, []string{"alice"}},
		{"cluster admin adds a node", &root2, "POST /v1/nodes", nil, 200, "", []string{"root2"}},
		{"cluster admin profiles", &root2, "GET /debug/pprof/", nil, 403, "own socket", nil},
		{"local root profiles", &access.Root, "GET /debug/pprof/", nil, 200, "", nil},
		{"local root adds a node", &access.Root, "POST /v1/nodes", nil, 200, "", nil},
		{"anyone asks who they are", &access.Caller{User: "nobody", Tenant: "shop"}, "GET /v1/whoami", nil, 200, "", nil},
		{"nobody reads", &access.Caller{User: "nobody", Tenant: "shop"}, "GET /v1/apps", nil, 403, "no role in any tenant", []string{"nobody"}},
		{"roles unknown", &alice, "GET /v1/apps", errors.New("database gone"), 500, "roles of alice: database gone", []string{"alice"}},
		{"no caller", nil, "GET /v1/ping", nil, 403, "without a caller", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &roles{bindings: cp, err: tt.lookupErr}
			s := &server{cp: f}
			ran := false
			h := s.authorized(tt.route, func(w http.ResponseWriter, r *http.Request) error {
				ran = true
				w.WriteHeader(200)
				return nil
			})
			method, path := samplePath(tt.route)
			r := httptest.NewRequest(method, path, nil)
			if tt.caller != nil {
				r = r.WithContext(access.WithCaller(r.Context(), *tt.caller))
			}
			w := httptest.NewRecorder()
			if err := h(w, r); err != nil {
				wire.WriteError(w, err)
			}
			if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("%d %s; want %d with %s", w.Code, w.Body, tt.want, tt.wantBody)
			}
			if ran != (tt.want == 200) {
				t.Errorf("the route's handler ran: %t", ran)
			}
			if d := cmp.Diff(tt.wantAsked, f.asked); d != "" {
				t.Errorf("roles looked up (-want +got):\n%s", d)
			}
		})
	}
}

// withRoute classifies a route for one test.
func withRoute(t *testing.T, route string, a access.Action) {
	if _, ok := routeActions[route]; ok {
		t.Fatalf("%s is a real route", route)
	}
	routeActions[route] = a
	t.Cleanup(func() { delete(routeActions, route) })
}

// TestAuthorizedNamedTenantAndUser: a route naming a tenant is decided
// there, not in the caller's; one removing a user or changing their keys
// needs the role in every tenant the user has one in.
func TestAuthorizedNamedTenantAndUser(t *testing.T) {
	withRoute(t, "PUT /test/users/{user}/roles/{tenant}", access.UserRole)
	withRoute(t, "POST /test/users/{user}/keys", access.UserAdd)
	withRoute(t, "DELETE /test/users/{user}", access.UserRemove)
	f := &roles{bindings: map[string][]access.Binding{
		"shopadmin": {{Tenant: "shop", Role: access.Admin}},
		"boss":      {{Tenant: "*", Role: access.Admin}},
		"clerk":     {{Tenant: "shop", Role: access.Viewer}},
		"twotenant": {{Tenant: "shop", Role: access.Viewer}, {Tenant: "blog", Role: access.Viewer}},
	}}
	tests := []struct {
		caller, route, path string
		want                int
		wantBody            string
	}{
		{"shopadmin", "PUT /test/users/{user}/roles/{tenant}", "/test/users/clerk/roles/shop", 200, ""},
		{"shopadmin", "PUT /test/users/{user}/roles/{tenant}", "/test/users/clerk/roles/blog", 403, `user.role in tenant \"blog\"`},
		{"shopadmin", "PUT /test/users/{user}/roles/{tenant}", "/test/users/shopadmin/roles/*", 403, `user.role in tenant \"*\"`},
		{"boss", "PUT /test/users/{user}/roles/{tenant}", "/test/users/shopadmin/roles/*", 200, ""},
		{"shopadmin", "POST /test/users/{user}/keys", "/test/users/clerk/keys", 200, ""},
		{"shopadmin", "POST /test/users/{user}/keys", "/test/users/boss/keys", 403, `boss holds admin on every tenant (*)`},
		{"shopadmin", "DELETE /test/users/{user}", "/test/users/twotenant", 403, `twotenant holds viewer on blog`},
		{"boss", "DELETE /test/users/{user}", "/test/users/twotenant", 200, ""},
		{"clerk", "DELETE /test/users/{user}", "/test/users/clerk", 403, `user.rm in tenant \"shop\" needs admin`},
	}
	for _, tt := range tests {
		s := &server{cp: f}
		h := s.authorized(tt.route, func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(200)
			return nil
		})
		mux := http.NewServeMux()
		mux.HandleFunc(tt.route, func(w http.ResponseWriter, r *http.Request) {
			r = r.WithContext(access.WithCaller(r.Context(), access.Caller{User: tt.caller, Tenant: "shop"}))
			if err := h(w, r); err != nil {
				wire.WriteError(w, err)
			}
		})
		method, _, _ := strings.Cut(tt.route, " ")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(method, tt.path, nil))
		if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.wantBody) {
			t.Errorf("%s: %s %s: %d %s; want %d with %s", tt.caller, method, tt.path, w.Code, w.Body, tt.want, tt.wantBody)
		}
	}
}

// TestWhoAmI: who the caller is and every role they hold; local root
// holds none and needs none.
func TestWhoAmI(t *testing.T) {
	f := &roles{bindings: map[string][]access.Binding{"alice": {{Tenant: "shop", Role: access.Deployer}, {Tenant: "*", Role: access.Viewer}}}}
	s := &server{cp: f}
	tests := []struct {
		caller access.Caller
		want   string
	}{
		{access.Caller{User: "alice", Credential: "SHA256:abc", Tenant: "shop"},
			`{"user":"alice","credential":"SHA256:abc","tenant":"shop","roles":[{"tenant":"shop","role":"deployer"},{"tenant":"*","role":"viewer"}]}` + "\n"},
		{access.Caller{User: "bob", Credential: "SHA256:def", Tenant: "default"},
			`{"user":"bob","credential":"SHA256:def","tenant":"default","roles":[]}` + "\n"},
		{access.Root, `{"user":"root","credential":"local socket","local":true,"roles":[]}` + "\n"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/v1/whoami", nil)
		r = r.WithContext(access.WithCaller(r.Context(), tt.caller))
		w := httptest.NewRecorder()
		if err := s.whoami(w, r); err != nil {
			t.Fatal(err)
		}
		if w.Body.String() != tt.want {
			t.Errorf("%s: %s; want %s", tt.caller.User, w.Body, tt.want)
		}
	}
	f.err = errs.ErrUnavailable
	r := httptest.NewRequest("GET", "/v1/whoami", nil)
	r = r.WithContext(access.WithCaller(r.Context(), access.Caller{User: "alice"}))
	if err := s.whoami(httptest.NewRecorder(), r); !errors.Is(err, errs.ErrUnavailable) {
		t.Errorf("roles not found: %v", err)
	}
}
