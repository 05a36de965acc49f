package masterapi

import (
	"context"
	"net/http"
	"time"
)

// Alert is one alert instance: a rule's condition on one thing (a node,
// an app, a replica, a certificate), from when it fired until it
// resolved. Key names the thing and the rule ("crash-loop/web-x7k2qa");
// ID names the instance: the same key firing again later is a new ID.
type Alert struct {
	ID       int64     `json:"id"`
	Rule     string    `json:"rule"`     // node-down, crash-loop, restarts, oom-kill, disk-full, memory-near-limit, failed-deploy, cert-expiring
	Key      string    `json:"key"`      // rule/thing
	Severity string    `json:"severity"` // critical, warning
	Summary  string    `json:"summary"`  // one line for people
	Node     string    `json:"node,omitempty"`
	App      string    `json:"app,omitempty"`
	Tenant   string    `json:"tenant,omitempty"`
	Replica  string    `json:"replica,omitempty"`
	Value    float64   `json:"value"` // what the rule measured (percent, restarts, days left...)
	Since    time.Time `json:"since"` // when the condition began
	Fired    time.Time `json:"fired"` // when the master fired it
	Resolved time.Time `json:"resolved,omitzero"`
}

// AlertList is GET /v1/alerts: the alerts firing, and those resolved in
// the last day (newest first), as far as the caller's tenant sees them
// (node alerts: cluster admins only).
type AlertList struct {
	Active   []Alert `json:"active"`
	Resolved []Alert `json:"resolved"`
}

// AlertNotice is what a webhook receives: one JSON object per POST, one
// notice per alert instance and status ("firing", then "resolved"). ID
// is unique per notice ("42-firing"): a receiver that may be sent a notice
// twice (the master died between the webhook's answer and recording it)
// drops the second by ID. Notices reach each webhook in the order they
// were made.
type AlertNotice struct {
	ID     string    `json:"id"`
	Status string    `json:"status"` // firing, resolved
	Alert  Alert     `json:"alert"`
	Time   time.Time `json:"time"` // when the notice was made
}

// Webhook is where alert notices go.
type Webhook struct {
	Name    string    `json:"name"`
	URL     string    `json:"url"`
	Created time.Time `json:"created"`
	// Queued counts the notices not yet delivered; LastError says why the
	// last attempt failed ("" when it did not).
	Queued    int    `json:"queued"`
	LastError string `json:"lastError,omitempty"`
}

// NewWebhook adds a webhook (POST /v1/alerts/webhooks).
type NewWebhook struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Alerts lists the active and recently resolved alerts.
func (c *Client) Alerts(ctx context.Context) (AlertList, error) {
	var out AlertList
	return out, c.Call(ctx, http.MethodGet, "/v1/alerts", nil, &out)
}

// Webhooks lists the alert webhooks.
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	var out []Webhook
	return out, c.Call(ctx, http.MethodGet, "/v1/alerts/webhooks", nil, &out)
}

// AddWebhook adds an alert webhook.
func (c *Client) AddWebhook(ctx context.Context, w NewWebhook) (Webhook, error) {
	var out Webhook
	return out, c.Call(ctx, http.MethodPost, "/v1/alerts/webhooks", w, &out)
}

// RemoveWebhook removes an alert webhook and the notices queued for it.
func (c *Client) RemoveWebhook(ctx context.Context, name string) error {
	return c.Call(ctx, http.MethodDelete, "/v1/alerts/webhooks/"+esc(name), nil, nil)
}
