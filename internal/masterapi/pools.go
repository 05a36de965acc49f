package masterapi

import (
	"context"
	"net/http"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// Pool is a named group of nodes at one provider (GET /v1/pools). The
// provider's API token is never sent back: TokenSet says whether the
// pool has one.
type Pool struct {
	Name     string `json:"name"`
	Provider string `json:"provider"` // static, local, digitalocean, hetzner
	// Min and Max bound Desired, the size wanted (moat pool scale, the
	// autoscaler); a static pool's are 0: its size is its nodes.
	Min     int `json:"min"`
	Max     int `json:"max"`
	Desired int `json:"desired"`
	// Nodes are the nodes enrolled in it (labelled moat-pool=NAME; a
	// node without that label is the static pool's).
	Nodes             int               `json:"nodes"`
	Types             []string          `json:"types,omitempty"`   // in order of preference
	Regions           []string          `json:"regions,omitempty"` // in order of preference
	Image             string            `json:"image,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Tenant            string            `json:"tenant,omitempty"`
	Shared            bool              `json:"shared,omitempty"`
	Endpoint          string            `json:"endpoint,omitempty"`
	LocalDir          string            `json:"localDir,omitempty"`
	IdleAfter         nodeapi.Duration  `json:"idleAfter"`
	KeepBilledHour    bool              `json:"keepBilledHour"`
	MaxCreatesPerHour int               `json:"maxCreatesPerHour"`
	TokenSet          bool              `json:"tokenSet"`
	// Removing: moat pool rm was asked while it had nodes; they are being
	// drained and destroyed, then the pool goes.
	Removing bool `json:"removing,omitempty"`
	// Monthly is the estimate of moat cost for the pool (nil: unknown,
	// e.g. a static pool, or prices not known yet).
	Monthly  *float64  `json:"monthly,omitempty"`
	Currency string    `json:"currency,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	// Servers are a cloud pool's servers as the pool manager knows them
	// (state creating, booting, enrolling, ready, retiring, destroying).
	Servers []PoolServer `json:"servers,omitempty"`
	// CreatesLastHour counts create calls in the last hour, which the
	// loop breaker caps at MaxCreatesPerHour; Breaker says why it is
	// open ("" when closed); LastError is the manager's last failure.
	CreatesLastHour int    `json:"createsLastHour,omitempty"`
	Breaker         string `json:"breaker,omitempty"`
	LastError       string `json:"lastError,omitempty"`
	// Cluster is the cluster's id, the value of the moat-cluster label
	// on every server moat creates (moat pool image labels its builder
	// with it).
	Cluster string `json:"cluster,omitempty"`
}

// PoolServer is one server of a cloud pool; Name is its node's name.
type PoolServer struct {
	Name      string    `json:"name"`
	ID        string    `json:"id,omitempty"` // the provider's; "" until its create call answered
	Type      string    `json:"type"`
	Region    string    `json:"region"`
	State     string    `json:"state"`
	Created   time.Time `json:"created"`
	LastError string    `json:"lastError,omitempty"`
}

// PoolSpec is a pool to add (POST /v1/pools, Name and Provider required)
// or what to change of one (PATCH /v1/pools/{pool}): a field left nil is
// left as it is. Token is the provider's API token, sealed at rest and
// never answered back; "" removes it.
type PoolSpec struct {
	Name              string             `json:"name"`
	Provider          string             `json:"provider,omitempty"`
	Min               *int               `json:"min,omitempty"`
	Max               *int               `json:"max,omitempty"`
	Desired           *int               `json:"desired,omitempty"`
	Types             *[]string          `json:"types,omitempty"`
	Regions           *[]string          `json:"regions,omitempty"`
	Image             *string            `json:"image,omitempty"`
	Labels            *map[string]string `json:"labels,omitempty"`
	Tenant            *string            `json:"tenant,omitempty"`
	Shared            *bool              `json:"shared,omitempty"`
	Endpoint          *string            `json:"endpoint,omitempty"`
	LocalDir          *string            `json:"localDir,omitempty"`
	IdleAfter         *nodeapi.Duration  `json:"idleAfter,omitempty"`
	KeepBilledHour    *bool              `json:"keepBilledHour,omitempty"`
	MaxCreatesPerHour *int               `json:"maxCreatesPerHour,omitempty"`
	Token             *string            `json:"token,omitempty"`
}

// PoolScale sets the size pools want (POST /v1/pools/scale), all or
// none: each within its pool's min..max.
type PoolScale struct {
	Desired map[string]int `json:"desired"`
}

// PoolRemoval is what DELETE /v1/pools/{pool} did: removed at once (the
// pool had no nodes), or marked removing while its nodes are drained
// and destroyed.
type PoolRemoval struct {
	Removed  bool `json:"removed"`
	Draining int  `json:"draining,omitempty"` // nodes being retired
}

// Cost is moat cost (GET /v1/cost): a monthly estimate per pool and per
// tenant, from the providers' published prices.
type Cost struct {
	Pools   []CostRow `json:"pools"`
	Tenants []CostRow `json:"tenants"`
	// Totals per currency.
	Totals map[string]float64 `json:"totals"`
	// Prices is when the prices used were fetched (the oldest).
	Prices time.Time `json:"prices,omitzero"`
}

// CostRow is one pool's (Pool set) or one tenant's estimate. Monthly is
// nil when unknown: a static pool's machines, or a provider whose prices
// could not be had (Note says why).
type CostRow struct {
	Pool     string   `json:"pool,omitempty"`
	Provider string   `json:"provider,omitempty"`
	Tenant   string   `json:"tenant"`
	Nodes    int      `json:"nodes"`
	Monthly  *float64 `json:"monthly,omitempty"`
	Currency string   `json:"currency,omitempty"`
	// Unpriced counts nodes whose price is unknown (static, or a type
	// the provider did not list).
	Unpriced int    `json:"unpriced,omitempty"`
	Note     string `json:"note,omitempty"`
}

// Pools lists the pools.
func (c *Client) Pools(ctx context.Context) ([]Pool, error) {
	var out []Pool
	return out, c.Call(ctx, http.MethodGet, "/v1/pools", nil, &out)
}

// AddPool adds a pool.
func (c *Client) AddPool(ctx context.Context, s PoolSpec) (Pool, error) {
	var out Pool
	return out, c.Call(ctx, http.MethodPost, "/v1/pools", s, &out)
}

// SetPool changes a pool (the fields s sets).
func (c *Client) SetPool(ctx context.Context, s PoolSpec) (Pool, error) {
	var out Pool
	return out, c.Call(ctx, http.MethodPatch, "/v1/pools/"+esc(s.Name), s, &out)
}

// RemovePool removes a pool, draining and destroying its nodes first.
func (c *Client) RemovePool(ctx context.Context, name string) (PoolRemoval, error) {
	var out PoolRemoval
	return out, c.Call(ctx, http.MethodDelete, "/v1/pools/"+esc(name), nil, &out)
}

// ScalePools sets the size pools want.
func (c *Client) ScalePools(ctx context.Context, s PoolScale) ([]Pool, error) {
	var out []Pool
	return out, c.Call(ctx, http.MethodPost, "/v1/pools/scale", s, &out)
}

// Cost is the monthly estimate per pool and tenant.
func (c *Client) Cost(ctx context.Context) (Cost, error) {
	var out Cost
	return out, c.Call(ctx, http.MethodGet, "/v1/cost", nil, &out)
}
