package enroll_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestAddEdge: node add --edge writes edge=true in node.conf through the
// operator's SSH; the node reports itself an edge, listens on 80 and 443,
// and the audit calls them intended (--strict passes). Enrolling again
// without the flag keeps the line; --edge=false removes it and the ports
// close.
func TestAddEdge(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	o := newOperator(t, c)

	o.mustMoat("node", "add", "-F", o.sshConfig, "--edge", "n1")
	if conf, _ := nodeFile(t, c, "n1", "etc-moat/node.conf"); !strings.Contains(conf, "edge=true\n") {
		t.Errorf("node.conf after node add --edge:\n%s", conf)
	}
	if n, _ := o.m.Client.Nodes(context.Background()); len(n) != 1 || !n[0].Info.Edge || n[0].Info.EdgeHTTP != ":80" || n[0].Info.EdgeHTTPS != ":443" {
		t.Errorf("the node does not report itself an edge: %+v", n)
	}
	o.waitAudit(map[int]string{22: "", 80: "edge (intended)", 443: "edge (intended)"})

	o.mustMoat("node", "add", "-F", o.sshConfig, "n1")
	if conf, _ := nodeFile(t, c, "n1", "etc-moat/node.conf"); !strings.Contains(conf, "edge=true\n") {
		t.Errorf("node.conf after node add without --edge: the edge line is gone:\n%s", conf)
	}

	o.mustMoat("node", "add", "-F", o.sshConfig, "--edge=false", "n1")
	if conf, _ := nodeFile(t, c, "n1", "etc-moat/node.conf"); strings.Contains(conf, "edge") || !strings.Contains(conf, "require-signed=true\n") {
		t.Errorf("node.conf after node add --edge=false:\n%s", conf)
	}
	if n, _ := o.m.Client.Nodes(context.Background()); len(n) != 1 || n[0].Info.Edge {
		t.Errorf("the node still reports itself an edge: %+v", n)
	}
	o.waitAudit(map[int]string{22: ""})
}

// waitAudit polls moat node audit --strict on n1 until the TCP ports
// listening (on any address) are exactly want's, each with its intended
// note.
func (o *operator) waitAudit(want map[int]string) {
	o.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, errOut, code := o.moat("node", "audit", "--json", "--strict", "n1")
		var report nodeapi.AuditReport
		err := json.Unmarshal([]byte(out), &report)
		got := map[int]string{}
		for _, s := range report.Sockets {
			if s.Proto == "tcp" || s.Proto == "tcp6" {
				got[s.Port] = s.Intended
			}
		}
		if code == 0 && err == nil && equalPorts(got, want) {
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("audit --strict: exit %d, ports %v, want %v\n%s%s", code, got, want, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func equalPorts(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
