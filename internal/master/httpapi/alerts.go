package httpapi

import (
	"context"
	"net/http"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/wire"
)

// AlertControl is alerts and the webhooks they are delivered to.
type AlertControl interface {
	// Alerts lists the alerts firing and recently resolved that the
	// caller sees: its tenant's apps', and the nodes' when nodes.
	Alerts(ctx context.Context, nodes bool) (masterapi.AlertList, error)
	Webhooks(ctx context.Context) ([]masterapi.Webhook, error)
	AddWebhook(ctx context.Context, req masterapi.NewWebhook, actor string) (masterapi.Webhook, error)
	RemoveWebhook(ctx context.Context, name, actor string) error
}

// Alerts are read like the app listing (nodes' alerts only by a caller
// who may list nodes); webhooks, which receive every tenant's alerts,
// are a cluster admin's.
func init() {
	for route, a := range map[string]access.Action{
		"GET /v1/alerts":                    access.AlertList,
		"GET /v1/alerts/webhooks":           access.AlertWebhook,
		"POST /v1/alerts/webhooks":          access.AlertWebhook,
		"DELETE /v1/alerts/webhooks/{name}": access.AlertWebhook,
	} {
		routeActions[route] = a
	}
}

func (s *server) alertRoutes(handle handleFunc) {
	handle("GET /v1/alerts", func(w http.ResponseWriter, r *http.Request) error {
		c, _ := access.CallerFrom(r.Context())
		_, nodesErr := s.allow(r.Context(), c, access.NodeList)
		list, err := s.cp.Alerts(r.Context(), nodesErr == nil)
		return reply(w, list, err)
	})
	handle("GET /v1/alerts/webhooks", func(w http.ResponseWriter, r *http.Request) error {
		hooks, err := s.cp.Webhooks(r.Context())
		return reply(w, hooks, err)
	})
	handle("POST /v1/alerts/webhooks", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.NewWebhook
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		hook, err := s.cp.AddWebhook(r.Context(), req, actor(r))
		return reply(w, hook, err)
	})
	handle("DELETE /v1/alerts/webhooks/{name}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, s.cp.RemoveWebhook(r.Context(), r.PathValue("name"), actor(r)))
	})
}
