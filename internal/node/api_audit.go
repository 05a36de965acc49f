package node

import (
	"net/http"

	"github.com/moatcloud/moat/internal/audit"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func (d *Daemon) handleAudit(w http.ResponseWriter, r *http.Request) error {
	report, err := audit.Run(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, auditWire(report))
}

// auditWire is an audit report as the node API sends it.
func auditWire(r audit.Report) nodeapi.AuditReport {
	out := nodeapi.AuditReport{SSHD: r.SSHD, Hardening: r.Hardening, Sockets: []nodeapi.AuditSocket{}, Findings: []nodeapi.AuditFinding{}}
	for _, s := range r.Sockets {
		out.Sockets = append(out.Sockets, nodeapi.AuditSocket(s))
	}
	for _, f := range r.Findings {
		out.Findings = append(out.Findings, nodeapi.AuditFinding(f))
	}
	return out
}
