package httpapi

import (
	"context"
	"net/http"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/wire"
)

// PoolControl is pools of nodes a provider makes, and what they cost.
type PoolControl interface {
	Pools(ctx context.Context) ([]masterapi.Pool, error)
	AddPool(ctx context.Context, s masterapi.PoolSpec, actor string) (masterapi.Pool, error)
	SetPool(ctx context.Context, s masterapi.PoolSpec, actor string) (masterapi.Pool, error)
	RemovePool(ctx context.Context, name, actor string) (masterapi.PoolRemoval, error)
	ScalePools(ctx context.Context, s masterapi.PoolScale, actor string) ([]masterapi.Pool, error)
	// Cost is the estimate the caller's tenant sees (every pool's when
	// it acts in every tenant).
	Cost(ctx context.Context) (masterapi.Cost, error)
}

// Pools create machines, which costs money: a cluster admin's. What they
// cost is read like the app listing.
func init() {
	for route, a := range map[string]access.Action{
		"GET /v1/pools":           access.PoolList,
		"POST /v1/pools":          access.PoolAdd,
		"PATCH /v1/pools/{pool}":  access.PoolSet,
		"DELETE /v1/pools/{pool}": access.PoolRemove,
		"POST /v1/pools/scale":    access.PoolScale,
		"GET /v1/cost":            access.CostRead,
	} {
		routeActions[route] = a
	}
	auditActions["POST /v1/pools"] = "pool add"
	auditActions["PATCH /v1/pools/{pool}"] = "pool set"
	auditActions["DELETE /v1/pools/{pool}"] = "pool rm"
	auditActions["POST /v1/pools/scale"] = "pool scale"
}

func (s *server) poolRoutes(handle handleFunc) {
	handle("GET /v1/pools", func(w http.ResponseWriter, r *http.Request) error {
		ps, err := s.cp.Pools(r.Context())
		return reply(w, ps, err)
	})
	handle("POST /v1/pools", func(w http.ResponseWriter, r *http.Request) error {
		var spec masterapi.PoolSpec
		if err := wire.Decode(r.Body, &spec); err != nil {
			return err
		}
		p, err := s.cp.AddPool(r.Context(), spec, actor(r))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusCreated, p)
	})
	handle("PATCH /v1/pools/{pool}", func(w http.ResponseWriter, r *http.Request) error {
		var spec masterapi.PoolSpec
		if err := wire.Decode(r.Body, &spec); err != nil {
			return err
		}
		spec.Name = r.PathValue("pool")
		p, err := s.cp.SetPool(r.Context(), spec, actor(r))
		return reply(w, p, err)
	})
	handle("DELETE /v1/pools/{pool}", func(w http.ResponseWriter, r *http.Request) error {
		rm, err := s.cp.RemovePool(r.Context(), r.PathValue("pool"), actor(r))
		return reply(w, rm, err)
	})
	handle("POST /v1/pools/scale", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.PoolScale
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		ps, err := s.cp.ScalePools(r.Context(), req, actor(r))
		return reply(w, ps, err)
	})
	handle("GET /v1/cost", func(w http.ResponseWriter, r *http.Request) error {
		c, err := s.cp.Cost(r.Context())
		return reply(w, c, err)
	})
}
