package gate_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestMetricsRouteByKey: over plain OpenSSH the master's key reads the
// node's metrics ring (its own numbers, nothing secret); a link key and
// the peer key cannot reach the node's API at all.
func TestMetricsRouteByKey(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.Install("n1")
	a := newAttacker(t, c, "n1")

	code, body := a.rpc("GET", "/v1/metrics?after=0&max=4&wait=30s", "")
	var p nodeapi.MetricsPage
	if code != 200 || json.Unmarshal([]byte(body), &p) != nil || len(p.Raw) == 0 || p.Gap {
		t.Fatalf("master key: GET /v1/metrics: %d %.300s; want a page of records", code, body)
	}
	rec, err := nodeapi.DecodeMetrics(p.Raw[0].Data)
	if err != nil || len(rec.Groups) == 0 || rec.Groups[0].Kind != nodeapi.GroupNode {
		t.Errorf("first record: %+v, %v; want the node's group", rec, err)
	}

	n, _ := c.Node("n1")
	keyPath := filepath.Join(t.TempDir(), "link_ed25519")
	key, err := sshkey.GenerateKey(keyPath, "link")
	if err != nil {
		t.Fatal(err)
	}
	line := nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, nodeapi.LinkGrant{ID: nodeapi.LinkID("web", "db", 5432), Target: "db", Port: 5432, Key: sshkey.AuthorizedKey(key.PublicKey())})
	f, err := os.OpenFile(filepath.Join(n.Dir, "root", ".ssh", "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(line + "\n")
	f.Close()
	request := "GET /v1/metrics?after=0 HTTP/1.1\r\nHost: node\r\n\r\n"
	for _, k := range []struct{ name, path, says string }{
		{"link", keyPath, "role link may not use rpc"},
		{"peer", c.PeerKeyPath, "role peer may not use rpc"},
	} {
		a.key = k.path
		out, errOut, code := a.ssh(request, "rpc")
		if code == 0 || out != "" || !strings.Contains(errOut, k.says) {
			t.Errorf("%s key: rpc GET /v1/metrics: exit %d, stdout %.200q, stderr %q; want a refusal saying %q", k.name, code, out, errOut, k.says)
		}
	}
}
