package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/userauth"
	"github.com/moatcloud/moat/internal/wire"
)

// UserControl is users, their keys and roles, and the trusted CAs.
type UserControl interface {
	AddUser(ctx context.Context, req masterapi.NewUser, actor string) (masterapi.User, error)
	Users(ctx context.Context) ([]masterapi.User, error)
	RemoveUser(ctx context.Context, name, actor string) error
	AddUserKey(ctx context.Context, name, key, actor string) (masterapi.User, error)
	RemoveUserKey(ctx context.Context, name, fingerprint, actor string) error
	SetRole(ctx context.Context, name string, r masterapi.Role, actor string) (masterapi.User, error)
	RemoveRole(ctx context.Context, name, tenant, actor string) error
	TrustCA(ctx context.Context, req masterapi.TrustCARequest, actor string) (masterapi.CA, error)
	UntrustCA(ctx context.Context, name, actor string) error
	CAs(ctx context.Context) ([]masterapi.CA, error)
	// UserTenants is the tenants a user has a role in ("*" not counted).
	UserTenants(user string) []string
}

func (s *server) userRoutes(handle handleFunc) {
	handle("GET /v1/users", func(w http.ResponseWriter, r *http.Request) error {
		users, err := s.cp.Users(r.Context())
		return reply(w, users, err)
	})
	handle("POST /v1/users", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.NewUser
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		u, err := s.cp.AddUser(r.Context(), req, actor(r))
		return reply(w, u, err)
	})
	handle("DELETE /v1/users/{user}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, s.cp.RemoveUser(r.Context(), r.PathValue("user"), actor(r)))
	})
	handle("POST /v1/users/{user}/keys", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.KeyRequest
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		u, err := s.cp.AddUserKey(r.Context(), r.PathValue("user"), req.Key, actor(r))
		return reply(w, u, err)
	})
	handle("DELETE /v1/users/{user}/keys/{fingerprint}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, s.cp.RemoveUserKey(r.Context(), r.PathValue("user"), r.PathValue("fingerprint"), actor(r)))
	})
	handle("PUT /v1/users/{user}/roles/{tenant}", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.Role
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		if req.Tenant != r.PathValue("tenant") {
			return errs.Invalid("tenant", "the body says tenant %q, the path %q", req.Tenant, r.PathValue("tenant"))
		}
		u, err := s.cp.SetRole(r.Context(), r.PathValue("user"), req, actor(r))
		return reply(w, u, err)
	})
	handle("DELETE /v1/users/{user}/roles/{tenant}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, s.cp.RemoveRole(r.Context(), r.PathValue("user"), r.PathValue("tenant"), actor(r)))
	})
	handle("GET /v1/cas", func(w http.ResponseWriter, r *http.Request) error {
		cas, err := s.cp.CAs(r.Context())
		return reply(w, cas, err)
	})
	handle("POST /v1/cas", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.TrustCARequest
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		ca, err := s.cp.TrustCA(r.Context(), req, actor(r))
		return reply(w, ca, err)
	})
	handle("DELETE /v1/cas/{ca}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, s.cp.UntrustCA(r.Context(), r.PathValue("ca"), actor(r)))
	})
}

// TenantHeader names the tenant a remote request acts in.
const TenantHeader = "Moat-Tenant"

type sessionKey struct{}

// WithSession marks a connection's context with the caller the master
// found for it on the api socket (from its SSH login, see package
// userauth): the http.Server's ConnContext.
func WithSession(ctx context.Context, c access.Caller) context.Context {
	return context.WithValue(ctx, sessionKey{}, c)
}

// RemoteHandler serves the master's API to operators' sessions on the api
// socket: the same routes, each request's caller the session's user.
func RemoteHandler(cp ControlPlane, log *slog.Logger) http.Handler {
	s := &server{cp: cp, log: log}
	s.callerOf = s.remoteCaller
	return s.handler()
}

// remoteCaller is the session's user (never anything the request says),
// acting in the tenant the Moat-Tenant header names, else the user's only
// tenant, else "default".
func (s *server) remoteCaller(r *http.Request) (access.Caller, error) {
	c, ok := r.Context().Value(sessionKey{}).(access.Caller)
	if !ok || c.User == "" {
		return access.Caller{}, errs.ErrForbidden
	}
	c.Local = false
	switch t := r.Header.Get(TenantHeader); {
	case t != "":
		if t != "*" && userauth.ValidName(t) != nil {
			return access.Caller{}, errs.Invalid(TenantHeader, "tenant %q: not a tenant name", t)
		}
		c.Tenant = t
	default:
		c.Tenant = "default"
		if ts := s.cp.UserTenants(c.User); len(ts) == 1 {
			c.Tenant = ts[0]
		}
	}
	return c, nil
}

// The users routes' actions, for authz.go's routeActions.
func init() {
	for route, a := range map[string]access.Action{
		"GET /v1/users":                              access.UserList,
		"POST /v1/users":                             access.UserAdd,
		"DELETE /v1/users/{user}":                    access.UserRemove,
		"POST /v1/users/{user}/keys":                 access.UserAdd,
		"DELETE /v1/users/{user}/keys/{fingerprint}": access.UserRemove,
		"PUT /v1/users/{user}/roles/{tenant}":        access.UserRole,
		"DELETE /v1/users/{user}/roles/{tenant}":     access.UserRole,
		"GET /v1/cas":                                access.UserList,
		"POST /v1/cas":                               access.UserTrustCA,
		"DELETE /v1/cas/{ca}":                        access.UserTrustCA,
	} {
		routeActions[route] = a
	}
}
