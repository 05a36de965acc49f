package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/wire"
)

// TenantControl is tenants and their quotas.
type TenantControl interface {
	Tenants(ctx context.Context) ([]masterapi.Tenant, error)
	Tenant(ctx context.Context, name string) (masterapi.Tenant, error)
	AddTenant(ctx context.Context, name, actor string) (masterapi.Tenant, error)
	RemoveTenant(ctx context.Context, name, actor string) error
	SetQuota(ctx context.Context, name string, q masterapi.Quota, actor string) (masterapi.Tenant, error)
}

func (s *server) tenantRoutes(handle handleFunc) {
	handle("GET /v1/tenants", func(w http.ResponseWriter, r *http.Request) error {
		ts, err := s.cp.Tenants(r.Context())
		return reply(w, ts, err)
	})
	handle("POST /v1/tenants", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.NewTenant
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		t, err := s.cp.AddTenant(r.Context(), req.Name, actor(r))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusCreated, t)
	})
	handle("GET /v1/tenants/{tenant}", func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("tenant")
		if err := ownTenant(r, name); err != nil {
			return err
		}
		t, err := s.cp.Tenant(r.Context(), name)
		return reply(w, t, err)
	})
	handle("DELETE /v1/tenants/{tenant}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, s.cp.RemoveTenant(r.Context(), r.PathValue("tenant"), actor(r)))
	})
	handle("PUT /v1/tenants/{tenant}/quota", func(w http.ResponseWriter, r *http.Request) error {
		var q masterapi.Quota
		if err := wire.Decode(r.Body, &q); err != nil {
			return err
		}
		t, err := s.cp.SetQuota(r.Context(), r.PathValue("tenant"), q, actor(r))
		return reply(w, t, err)
	})
}

// ownTenant lets a tenant's users read their own tenant's quota (the
// role was checked in the tenant the request acts in) and no other's;
// a cluster admin lists them all with GET /v1/tenants.
func ownTenant(r *http.Request, name string) error {
	c, _ := access.CallerFrom(r.Context())
	if c.Local || c.Tenant == "*" || c.Tenant == name {
		return nil
	}
	return fmt.Errorf("user %s acts in tenant %q, not %q: tenant %s's quota is read in it (or by a cluster admin, with moat tenant ls): %w",
		c.User, c.Tenant, name, name, errs.ErrForbidden)
}

// requestTenant is the tenant a request of root on the local socket acts
// in: what its Moat-Tenant header names ("*": every tenant, for
// listings), else none (the default tenant).
func requestTenant(r *http.Request) (string, error) {
	t := r.Header.Get(masterapi.TenantHeader)
	if t == "" || t == "*" {
		return t, nil
	}
	if err := store.ValidTenant(t); err != nil {
		return "", errs.Invalid(masterapi.TenantHeader, "%v", err)
	}
	return t, nil
}

// The tenants routes' actions, for authz.go's routeActions.
func init() {
	for route, a := range map[string]access.Action{
		"GET /v1/tenants":                access.TenantList,
		"POST /v1/tenants":               access.TenantAdd,
		"GET /v1/tenants/{tenant}":       access.QuotaRead,
		"DELETE /v1/tenants/{tenant}":    access.TenantRemove,
		"PUT /v1/tenants/{tenant}/quota": access.QuotaSet,
	} {
		routeActions[route] = a
	}
}
