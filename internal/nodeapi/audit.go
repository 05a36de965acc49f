package nodeapi

import (
	"context"
	"net/http"
)

// AuditReport is what a node exposes: listening sockets, sshd settings,
// findings (the node builds it with package audit).
type AuditReport struct {
	Sockets  []AuditSocket     `json:"sockets"`
	SSHD     map[string]string `json:"sshd,omitempty"` // the effective sshd settings that matter (subset of `sshd -T`)
	Findings []AuditFinding    `json:"findings"`
	// Hardening says whether moat's sshd drop-in is in force: "in
	// force", "not installed", or "not in force: why".
	Hardening string `json:"hardening,omitempty"`
}

// AuditSocket is one listening TCP socket or bound UDP socket.
type AuditSocket struct {
	Proto    string `json:"proto"`   // tcp, tcp6, udp, udp6
	Address  string `json:"address"` // without the port
	Port     int    `json:"port"`
	Inode    uint64 `json:"inode"`
	Pid      int    `json:"pid,omitempty"`
	Process  string `json:"process,omitempty"` // the owning process's comm
	Loopback bool   `json:"loopback"`
	// Intended says why a listener the operator asked for is there, e.g.
	// "edge (intended)" for an edge node's HTTP(S) ports.
	Intended string `json:"intended,omitempty"`
}

// AuditFinding is one thing the audit wants a human to look at.
type AuditFinding struct {
	Severity string `json:"severity"` // "high", "warn" or "info"
	What     string `json:"what"`
}

// Audit asks the node what it exposes.
func (c *Client) Audit(ctx context.Context) (AuditReport, error) {
	var r AuditReport
	return r, c.Call(ctx, http.MethodGet, "/v1/audit", nil, &r)
}

// Ping is the cheapest round trip to the node daemon.
func (c *Client) Ping(ctx context.Context) error {
	return c.Call(ctx, http.MethodGet, "/v1/ping", nil, nil)
}
