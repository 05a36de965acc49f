package node_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// freeLoopbackPort is a port free on loopback a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// edgeGet asks the edge at addr for host's /.
func edgeGet(addr, host string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

func edgeTable(host, target string, endpoints ...string) nodeapi.LinkTable {
	l := link(nodeapi.EdgeSource, 0, target, 8080, endpoints...)
	return nodeapi.LinkTable{
		Links:   []nodeapi.Link{l},
		Ingress: []nodeapi.IngressRoute{{Host: host, App: target, Port: 8080, Link: l.ID}},
	}
}

// TestEdgeNode: a node started with --edge serves its table's ingress
// through the edge link, to a replica on this node; a container labelled
// moat.app=moat_edge gets no listener; after a restart the saved table's
// routes are served again before any master sends one; a route removed
// is a 404.
func TestEdgeNode(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	n := newNode(t, "--edge", "--edge-http", addr, "--edge-https", "127.0.0.1:0")
	api := app(t, n, "api1", "tenant1.api", []int{8080}, "serve", "127.0.0.1:8080")
	app(t, n, "sneak1", nodeapi.EdgeSource, nil, "sleep") // labelled as the edge: it must get no listener
	waitLog(t, n, api.ID, "serving")
	setLinks(t, n.Client, edgeTable("web.test", "tenant1.api", "api1"))

	get := func(host, want string, code int) {
		t.Helper()
		var got string
		var gotCode int
		var err error
		waitFor(t, fmt.Sprintf("%s answered %d %q", host, code, want), 10*time.Second, func() bool {
			gotCode, got, err = edgeGet(addr, host)
			return err == nil && gotCode == code && strings.HasPrefix(got, want)
		})
	}
	get("web.test", "probe api1", http.StatusOK)
	get("other.test", "404", http.StatusNotFound)
	if st := linkStatus(t, n.Client); len(st.Listeners) != 0 {
		t.Errorf("listeners %+v; the edge's link has none, in no container (not in sneak1, labelled moat.app=%s)", st.Listeners, nodeapi.EdgeSource)
	}
	info, err := n.Client.Info(t.Context())
	if err != nil || !info.Edge || info.EdgeHTTP != addr {
		t.Errorf("info: edge %t on %q, %v; want an edge on %s", info.Edge, info.EdgeHTTP, err, addr)
	}

	n.Kill9()
	n.Start()
	get("web.test", "probe api1", http.StatusOK)

	setLinks(t, n.Client, nodeapi.LinkTable{})
	get("web.test", "404", http.StatusNotFound)
}

// TestIngressOffEdge: a node that is no edge takes a table with ingress,
// opens no listener for it, and says once that it ignores it.
func TestIngressOffEdge(t *testing.T) {
	n := newNode(t)
	setLinks(t, n.Client, edgeTable("web.test", "api", "api1"))
	setLinks(t, n.Client, edgeTable("web.test", "api", "api1"))
	if st := linkStatus(t, n.Client); len(st.Listeners) != 0 || len(st.Table.Ingress) != 1 {
		t.Errorf("status %+v; want the table kept, no listener", st)
	}
	info, err := n.Client.Info(t.Context())
	if err != nil || info.Edge || info.EdgeHTTP != "" {
		t.Errorf("info: edge %t on %q, %v; want no edge", info.Edge, info.EdgeHTTP, err)
	}
	if c := strings.Count(n.Log(), "this node is not an edge"); c != 1 {
		t.Errorf("the node said %d times that it ignores ingress, want once:\n%s", c, n.Log())
	}
}
