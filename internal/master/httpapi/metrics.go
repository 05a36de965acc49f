package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
)

// MetricsControl is the master's monitoring history.
type MetricsControl interface {
	// MetricsHistory reads one node's, app's, replica's or route's
	// history; an app, replica or route of a tenant the caller does not
	// see is not found.
	MetricsHistory(ctx context.Context, q masterapi.MetricsQuery) (masterapi.Metrics, error)
	// MetricsLatest is the newest sample of every replica and route the
	// caller's tenant sees, and of every node when nodes is set.
	MetricsLatest(ctx context.Context, nodes bool) ([]masterapi.Latest, error)
}

// Metrics routes ask what listing the thing asks: a node's history is the
// cluster's (moat node ls), an app's or route's its tenant's (moat apps),
// a replica's its tenant's (moat ps). The latest samples are everyone's
// who may list apps, nodes shown only to those who may list nodes.
func init() {
	routeActions["GET /v1/metrics/node/{name}"] = access.NodeList
	routeActions["GET /v1/metrics/app/{name}"] = access.AppList
	routeActions["GET /v1/metrics/replica/{name}"] = access.AppPS
	routeActions["GET /v1/metrics/route/{name}"] = access.AppList
	routeActions["GET /v1/metrics/latest"] = access.AppList
}

func (s *server) metricsRoutes(handle handleFunc) {
	for _, kind := range []string{masterapi.MetricsNode, masterapi.MetricsApp, masterapi.MetricsReplica, masterapi.MetricsRoute} {
		handle("GET /v1/metrics/"+kind+"/{name}", func(w http.ResponseWriter, r *http.Request) error {
			q, err := metricsQuery(r)
			if err != nil {
				return err
			}
			q.Kind = kind
			m, err := s.cp.MetricsHistory(r.Context(), q)
			return reply(w, m, err)
		})
	}
	handle("GET /v1/metrics/latest", func(w http.ResponseWriter, r *http.Request) error {
		c, _ := access.CallerFrom(r.Context())
		_, err := s.allow(r.Context(), c, access.NodeList)
		l, err := s.cp.MetricsLatest(r.Context(), err == nil)
		return reply(w, l, err)
	})
}

// metricsQuery reads ?since=&until=&step=&points=; times are RFC 3339 or
// Unix seconds, step a duration ("5m"), points a count.
func metricsQuery(r *http.Request) (masterapi.MetricsQuery, error) {
	v := r.URL.Query()
	q := masterapi.MetricsQuery{Name: r.PathValue("name")}
	var err error
	if q.Since, err = queryTime(v.Get("since"), "since"); err != nil {
		return q, err
	}
	if q.Until, err = queryTime(v.Get("until"), "until"); err != nil {
		return q, err
	}
	if s := v.Get("step"); s != "" {
		if q.Step, err = time.ParseDuration(s); err != nil || q.Step < 0 {
			return q, errs.Invalid("step", "%q is not a duration such as 5m", s)
		}
	}
	if s := v.Get("points"); s != "" {
		if q.Points, err = strconv.Atoi(s); err != nil || q.Points < 0 {
			return q, errs.Invalid("points", "%q is not a count of points", s)
		}
	}
	return q, nil
}

func queryTime(s, name string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, errs.Invalid(name, "%q is neither an RFC 3339 time nor Unix seconds", s)
}
