package masterapi

import (
	"context"
	"net/http"
	"time"
)

// TenantHeader names the tenant a request acts in. The master believes
// it only as far as the caller's roles allow (package access); root on
// the master's socket may act in any tenant.
const TenantHeader = "Moat-Tenant"

// Tenant is a tenant, its quota and what it uses of it.
type Tenant struct {
	Name    string    `json:"name"`
	Quota   Quota     `json:"quota"`
	Usage   Usage     `json:"usage"`
	Created time.Time `json:"created"`
}

// Quota bounds what a tenant's apps may ask for in total (their target
// revisions' replicas, and replicas × CPU and memory), how many apps it
// may have and how many nodes of its own. A nil limit is unlimited.
type Quota struct {
	MilliCPU    *int64 `json:"milliCPU,omitempty"`
	MemoryBytes *int64 `json:"memoryBytes,omitempty"`
	Replicas    *int64 `json:"replicas,omitempty"`
	Apps        *int64 `json:"apps,omitempty"`
	Nodes       *int64 `json:"nodes,omitempty"`
}

// Usage is what a tenant uses, counted as its Quota is.
type Usage struct {
	MilliCPU    int64 `json:"milliCPU"`
	MemoryBytes int64 `json:"memoryBytes"`
	Replicas    int64 `json:"replicas"`
	Apps        int64 `json:"apps"`
	Nodes       int64 `json:"nodes"`
}

// NewTenant asks for a tenant.
type NewTenant struct {
	Name string `json:"name"`
}

// Tenants lists the tenants with their quotas and use.
func (c *Client) Tenants(ctx context.Context) ([]Tenant, error) {
	var out []Tenant
	return out, c.Call(ctx, http.MethodGet, "/v1/tenants", nil, &out)
}

// Tenant returns one tenant.
func (c *Client) Tenant(ctx context.Context, name string) (Tenant, error) {
	var out Tenant
	return out, c.Call(ctx, http.MethodGet, "/v1/tenants/"+esc(name), nil, &out)
}

// AddTenant makes a tenant.
func (c *Client) AddTenant(ctx context.Context, name string) (Tenant, error) {
	var out Tenant
	return out, c.Call(ctx, http.MethodPost, "/v1/tenants", NewTenant{Name: name}, &out)
}

// RemoveTenant removes a tenant that holds no app and no node.
func (c *Client) RemoveTenant(ctx context.Context, name string) error {
	return c.Call(ctx, http.MethodDelete, "/v1/tenants/"+esc(name), nil, nil)
}

// SetQuota replaces a tenant's quota.
func (c *Client) SetQuota(ctx context.Context, name string, q Quota) (Tenant, error) {
	var out Tenant
	return out, c.Call(ctx, http.MethodPut, "/v1/tenants/"+esc(name)+"/quota", q, &out)
}

// InTenant is a client whose requests act in tenant (the TenantHeader);
// "" is the client itself.
func (c *Client) InTenant(tenant string) *Client {
	if tenant == "" {
		return c
	}
	hc := *c.HTTP
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = tenantTransport{tenant: tenant, next: next}
	cc := *c
	cc.HTTP = &hc
	return &cc
}

type tenantTransport struct {
	tenant string
	next   http.RoundTripper
}

func (t tenantTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(TenantHeader, t.tenant)
	return t.next.RoundTrip(r)
}
