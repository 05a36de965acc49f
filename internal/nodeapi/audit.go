package nodeapi

import (
	"context"
	"net/http"

	"github.com/moatcloud/moat/internal/audit"
)

// AuditReport is what a node exposes: listening sockets, sshd settings,
// findings.
type AuditReport = audit.Report

// Audit asks the node what it exposes.
func (c *Client) Audit(ctx context.Context) (AuditReport, error) {
	var r AuditReport
	return r, c.Call(ctx, http.MethodGet, "/v1/audit", nil, &r)
}

// Ping is the cheapest round trip to the node daemon.
func (c *Client) Ping(ctx context.Context) error {
	return c.Call(ctx, http.MethodGet, "/v1/ping", nil, nil)
}
