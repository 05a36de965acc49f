package httpapi

import (
	"context"
	"net/http"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/masterapi"
)

// AutoscalerControl is what the autoscalers last decided.
type AutoscalerControl interface {
	// AutoscalerStatus is the last decisions the caller may see: its
	// tenant's apps', and the pools', nodes' and actions when nodes.
	AutoscalerStatus(ctx context.Context, nodes bool) (masterapi.AutoscalerStatus, error)
}

// The autoscalers' decisions are read like the app listing; pools and
// nodes only by a caller who may list nodes.
func init() {
	routeActions["GET /v1/autoscaler"] = access.AutoscaleRead
}

func (s *server) autoscalerRoutes(handle handleFunc) {
	handle("GET /v1/autoscaler", func(w http.ResponseWriter, r *http.Request) error {
		c, _ := access.CallerFrom(r.Context())
		_, nodesErr := s.allow(r.Context(), c, access.NodeList)
		st, err := s.cp.AutoscalerStatus(r.Context(), nodesErr == nil)
		return reply(w, st, err)
	})
}
