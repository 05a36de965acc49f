package node

import (
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/moatcloud/moat/internal/audit"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func (d *Daemon) handleAudit(w http.ResponseWriter, r *http.Request) error {
	report, err := audit.RunIntended(r.Context(), d.intendedListeners())
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

// intendedListeners are the sockets the operator asked for: an edge's
// HTTP and HTTPS ports, held by this daemon.
func (d *Daemon) intendedListeners() []audit.Intended {
	if !d.cfg.Edge {
		return nil
	}
	var out []audit.Intended
	for _, addr := range []string{d.cfg.EdgeHTTP, d.cfg.EdgeHTTPS} {
		if _, p, err := net.SplitHostPort(addr); err == nil {
			if port, err := strconv.Atoi(p); err == nil {
				out = append(out, audit.Intended{Pid: os.Getpid(), Port: port, What: "edge (intended)"})
			}
		}
	}
	return out
}
