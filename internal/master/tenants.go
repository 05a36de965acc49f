package master

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/spec"
)

// Tenants own apps and nodes. A request acts in its caller's tenant
// (access.Caller.Tenant): its apps are named within it, and the store
// keys them with store.AppKey. Names cross the API as the tenant sees
// them; keys stay inside the master.

// AllTenants, as a caller's tenant, lists every tenant's apps and
// replicas (a cluster admin's view); a change made in it acts in the
// default tenant.
const AllTenants = "*"

// callerTenant is the tenant a request acts in: the caller's, or the
// default tenant when the caller names none (root on the local socket
// without Moat-Tenant, the master acting by itself) or every one.
func callerTenant(ctx context.Context) string {
	c, ok := access.CallerFrom(ctx)
	if !ok || c.Tenant == "" || c.Tenant == AllTenants {
		return store.DefaultTenant
	}
	return c.Tenant
}

// seesTenant says whether a listing made for the caller shows what
// belongs to tenant.
func seesTenant(ctx context.Context, tenant string) bool {
	if c, ok := access.CallerFrom(ctx); ok && c.Tenant == AllTenants {
		return true
	}
	return tenant == callerTenant(ctx)
}

// appKey is the store's key of the caller's app called name. The
// default tenant's keys are bare names and other tenants' "tenant.app",
// so a name with a dot (no app's name has one) would be another tenant's
// key: only a caller who sees every tenant (or root on the local socket)
// may name an app by its key; for anyone else it is a key no app has.
func appKey(ctx context.Context, name string) string {
	if strings.Contains(name, ".") {
		if c, ok := access.CallerFrom(ctx); ok && c.Tenant != AllTenants && !c.Local {
			return "." + name // SplitAppKey: tenant "", which no caller is in
		}
	}
	return store.AppKey(callerTenant(ctx), name)
}

// appName is the name an app's key shows as to its tenant.
func appName(key string) string {
	_, name := store.SplitAppKey(key)
	return name
}

// keyTenant is the tenant an app's key belongs to.
func keyTenant(key string) string {
	t, _ := store.SplitAppKey(key)
	return t
}

// checkQuota refuses a change (what, e.g. "this deploy") that would make
// the app keyed key ask for sp, if that takes its tenant over a quota.
// The tenant must exist. Callers hold m.deploys, so two changes cannot
// both fit the room left for one.
func (m *Master) checkQuota(ctx context.Context, key string, sp spec.App, what string) error {
	tenant := keyTenant(key)
	t, err := m.db.GetTenant(ctx, tenant)
	if err != nil {
		return err
	}
	if t.Quota == (store.Quota{}) {
		return nil
	}
	w, err := m.look(ctx)
	if err != nil {
		return err
	}
	var before usage
	for _, a := range w.apps {
		if a.Name == key {
			before = appUsage(a.spec)
		}
	}
	nodes, err := m.db.Nodes(ctx)
	if err != nil {
		return err
	}
	return quotaProblem(tenant, t.Quota, tenantUsage(tenant, w.apps, nodes), before, appUsage(sp), what)
}

// checkNodeQuota refuses a node that would take its tenant over its
// nodes quota: a new node, or one moving to another tenant. A node
// moving between tenants must hold no replica its new tenancy would not
// take: those would go on running beside another tenant's.
func (m *Master) checkNodeQuota(ctx context.Context, n store.Node) error {
	t, err := m.db.GetTenant(ctx, n.Tenant)
	if err != nil {
		return err
	}
	nodes, err := m.db.Nodes(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(nodes, func(x store.Node) bool { return x.Name == n.Name })
	if i >= 0 && nodes[i].Tenant == n.Tenant && (n.Shared || !nodes[i].Shared) {
		return nil // as it was, or now shared as well
	}
	if i >= 0 {
		reps, err := m.db.Replicas(ctx)
		if err != nil {
			return err
		}
		for _, r := range reps {
			if r.Node == n.Name && !n.Shared && keyTenant(r.App) != n.Tenant {
				return fmt.Errorf("node %s runs replica %s of tenant %s: drain it (moat node drain %s) before it becomes tenant %s's: %w",
					n.Name, r.ID, keyTenant(r.App), n.Name, n.Tenant, errs.ErrConflict)
			}
		}
		if nodes[i].Tenant == n.Tenant {
			return nil
		}
	}
	return quotaProblem(n.Tenant, t.Quota, tenantUsage(n.Tenant, nil, nodes), usage{}, usage{Nodes: 1}, "this node")
}

// Tenants lists the tenants, their quotas and what they use.
func (m *Master) Tenants(ctx context.Context) ([]masterapi.Tenant, error) {
	ts, err := m.db.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	w, err := m.look(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := m.db.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]masterapi.Tenant, 0, len(ts))
	for _, t := range ts {
		out = append(out, tenantView(t, tenantUsage(t.Name, w.apps, nodes)))
	}
	return out, nil
}

// Tenant describes one tenant.
func (m *Master) Tenant(ctx context.Context, name string) (masterapi.Tenant, error) {
	t, err := m.db.GetTenant(ctx, name)
	if err != nil {
		return masterapi.Tenant{}, err
	}
	w, err := m.look(ctx)
	if err != nil {
		return masterapi.Tenant{}, err
	}
	nodes, err := m.db.Nodes(ctx)
	if err != nil {
		return masterapi.Tenant{}, err
	}
	return tenantView(t, tenantUsage(name, w.apps, nodes)), nil
}

// AddTenant makes a tenant, without a quota.
func (m *Master) AddTenant(ctx context.Context, name, actor string) (masterapi.Tenant, error) {
	t, err := m.db.AddTenant(ctx, name)
	if err != nil {
		return masterapi.Tenant{}, err
	}
	m.log.Info("tenant added", "tenant", name, "by", actor)
	return tenantView(t, usage{}), nil
}

// RemoveTenant removes a tenant that holds no app and no node.
func (m *Master) RemoveTenant(ctx context.Context, name, actor string) error {
	m.deploys.Lock() // no app of it is being made meanwhile
	defer m.deploys.Unlock()
	if err := m.noPoolOfTenant(ctx, name); err != nil {
		return err
	}
	if err := m.db.RemoveTenant(ctx, name); err != nil {
		return err
	}
	m.log.Info("tenant removed", "tenant", name, "by", actor)
	return nil
}

// SetQuota replaces a tenant's quota. What the tenant uses already is
// left alone, even above the new quota: only what grows it is refused.
func (m *Master) SetQuota(ctx context.Context, name string, q masterapi.Quota, actor string) (masterapi.Tenant, error) {
	if err := m.db.SetQuota(ctx, name, store.Quota(q)); err != nil {
		return masterapi.Tenant{}, err
	}
	m.log.Info("tenant quota set", "tenant", name, "by", actor)
	return m.Tenant(ctx, name)
}

func tenantView(t store.Tenant, u usage) masterapi.Tenant {
	return masterapi.Tenant{Name: t.Name, Quota: masterapi.Quota(t.Quota), Usage: masterapi.Usage(u), Created: t.Created}
}

// registerNode records a node, within its tenant's nodes quota.
func (m *Master) registerNode(ctx context.Context, n store.Node) error {
	m.deploys.Lock() // one quota decision at a time
	defer m.deploys.Unlock()
	if err := m.checkNodeQuota(ctx, n); err != nil {
		return err
	}
	return m.db.PutNode(ctx, n)
}
