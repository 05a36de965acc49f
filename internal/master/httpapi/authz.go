package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
)

// RoleControl is what authorisation asks of the master: the roles a user
// holds.
type RoleControl interface {
	// Bindings are the user's roles, in their tenants; none for a user
	// the master does not know.
	Bindings(ctx context.Context, user string) ([]access.Binding, error)
}

// routeActions is the action of every route the API serves: where a
// route's permission is decided (the routes of users.go and tenants.go
// add theirs from their files' init). Handler refuses to register a
// route missing here (authorized panics), so a new route cannot be
// served before it is classified; the tests walk both ways, and the RBAC
// matrix (internal/master/rbac_test.go) sends every one (Routes).
var routeActions = map[string]access.Action{
	"GET /v1/ping":   access.Ping,
	"GET /v1/whoami": access.WhoAmI,

	"GET /v1/apps":                                access.AppList,
	"GET /v1/replicas":                            access.AppPS,
	"GET /v1/apps/{app}/revisions":                access.AppHistory,
	"GET /v1/apps/{app}/revisions/{rev}/progress": access.AppProgress,
	"GET /v1/apps/{app}/logs":                     access.AppLogs,
	"POST /v1/apps":                               access.AppDeploy,
	"POST /v1/apps/{app}/scale":                   access.AppScale,
	"POST /v1/apps/{app}/rollback":                access.AppRollback,
	"POST /v1/apps/{app}/promote":                 access.AppPromote,
	"DELETE /v1/apps/{app}":                       access.AppRemove,
	"POST /v1/apps/{app}/dial":                    access.AppDial,

	"GET /v1/nodes":                  access.NodeList,
	"POST /v1/nodes":                 access.NodeAdd,
	"DELETE /v1/nodes/{node}":        access.NodeRemove,
	"POST /v1/nodes/{node}/cordon":   access.NodeCordon,
	"POST /v1/nodes/{node}/uncordon": access.NodeCordon,
	"POST /v1/nodes/{node}/drain":    access.NodeDrain,
	"GET /v1/nodes/{node}/audit":     access.NodeAudit,
	"POST /v1/nodes/{node}/dial":     access.NodeDial,
	"GET /v1/key":                    access.MasterKey,

	"GET /v1/images":               access.ImageList,
	"GET /v1/images/{ref...}":      access.ImageInspect,
	"POST /v1/images/import":       access.ImageImport,
	"POST /v1/signatures/{ref...}": access.ImageSign,
	"DELETE /v1/images/{ref...}":   access.ImageRemove,
	"POST /v1/images/gc":           access.ImageGC,
	"GET /v1/stats":                access.DeliveryStats,

	"GET /v1/apps/{app}/secrets":           access.SecretList,
	"PUT /v1/apps/{app}/secrets/{name}":    access.SecretSet,
	"DELETE /v1/apps/{app}/secrets/{name}": access.SecretRemove,
	// Every tenant's envelopes, for rotating the cluster's secrets key.
	"GET /v1/secrets": access.SecretRotate,
	"PUT /v1/secrets": access.SecretRotate,

	"GET /debug/pprof/":        access.Debug,
	"GET /debug/pprof/profile": access.Debug,
	"GET /debug/progress":      access.Debug,
}

// authorized refuses requests the caller's roles do not allow, before
// anything of them is read: 403 naming the action, the tenant and the
// roles the caller has. Root on the local socket may do everything.
//
// A request acts in the caller's tenant, except on a route that names
// one ({tenant}: a tenant's quota, a role in it), where the role must
// hold in that one. On a route naming a user ({user}) whose action is
// removing them or their keys or adding one, the caller must hold the
// role in every tenant the user has one in (access.AllowOver).
func (s *server) authorized(route string, h handler) handler {
	action, ok := routeActions[route]
	if !ok {
		// A programming error, found the first time the master or any
		// test builds the handler: better than serving it unguarded.
		panic(fmt.Sprintf("httpapi: route %q has no action in authz.go's routeActions", route))
	}
	tenantInPath := strings.Contains(route, "{tenant}")
	userInPath := strings.Contains(route, "{user}") && (action == access.UserRemove || action == access.UserAdd)
	return func(w http.ResponseWriter, r *http.Request) error {
		c, ok := access.CallerFrom(r.Context())
		if !ok {
			return fmt.Errorf("%s: a request without a caller: %w", action, errs.ErrForbidden)
		}
		if tenantInPath {
			c.Tenant = r.PathValue("tenant")
		}
		bindings, err := s.allow(r.Context(), c, action)
		if err != nil {
			return err
		}
		if userInPath && !c.Local {
			if err := s.allowOver(r.Context(), c, bindings, action, r.PathValue("user")); err != nil {
				return err
			}
		}
		return h(w, r)
	}
}

// allow decides whether c may do action in c.Tenant; it returns c's
// roles, when they had to be looked up.
func (s *server) allow(ctx context.Context, c access.Caller, action access.Action) ([]access.Binding, error) {
	var bindings []access.Binding
	if access.NeedsRoles(c.Local, action) {
		var err error
		if bindings, err = s.cp.Bindings(ctx, c.User); err != nil {
			return nil, fmt.Errorf("roles of %s: %w", c.User, err)
		}
	}
	if err := access.Allow(bindings, c.Local, action, c.Tenant); err != nil {
		return nil, fmt.Errorf("user %s: %w", c.User, err)
	}
	return bindings, nil
}

// allowOver decides whether c, holding bindings, may do action to user.
func (s *server) allowOver(ctx context.Context, c access.Caller, bindings []access.Binding, action access.Action, user string) error {
	target, err := s.cp.Bindings(ctx, user)
	if err != nil {
		return fmt.Errorf("roles of %s: %w", user, err)
	}
	if err := access.AllowOver(bindings, c.Local, action, user, target); err != nil {
		return fmt.Errorf("user %s: %w", c.User, err)
	}
	return nil
}

// Routes are the API's routes and their actions, for tests that go
// through every one (the RBAC matrix).
func Routes() map[string]access.Action {
	out := make(map[string]access.Action, len(routeActions))
	for r, a := range routeActions {
		out[r] = a
	}
	return out
}
