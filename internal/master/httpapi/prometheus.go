package httpapi

import (
	"fmt"
	"net/http"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
)

// PrometheusControl is the master's state for Prometheus (a control
// plane without it answers 404).
type PrometheusControl interface {
	// Prometheus serves every node, app and replica in the Prometheus
	// text format (package prom).
	Prometheus() http.Handler
}

func init() {
	routeActions["GET /v1/prometheus"] = access.Prometheus
}

// prometheusRoutes serves the Prometheus exposition to a cluster admin
// (access.Prometheus): it shows every tenant's apps, unfiltered, so a
// tenant's operator is refused rather than shown a part.
func (s *server) prometheusRoutes(handle handleFunc) {
	handle("GET /v1/prometheus", func(w http.ResponseWriter, r *http.Request) error {
		pc, ok := s.cp.(PrometheusControl)
		if !ok {
			return fmt.Errorf("no Prometheus exposition on this API: %w", errs.ErrNotFound)
		}
		pc.Prometheus().ServeHTTP(w, r)
		return nil
	})
}
