package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
)

// clusterApp runs a replica of app on a cluster node (signed probe image).
func clusterApp(t testing.TB, api *nodeapi.Client, name, appKey string, ports []int, cmd ...string) nodeapi.Container {
	t.Helper()
	ctx := context.Background()
	spec := nodeapi.ContainerSpec{Name: name, Image: probeImage, Cmd: cmd, Labels: map[string]string{"moat.app": appKey}}
	for _, p := range ports {
		spec.Ports = append(spec.Ports, nodeapi.Port{Port: p})
	}
	if _, err := api.CreateContainer(ctx, spec, true); err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	var c nodeapi.Container
	poll(t, name+" running", 20*time.Second, func() bool {
		var err error
		c, err = api.Container(ctx, name)
		return err == nil && c.State == nodeapi.StateRunning && c.Pid != 0
	})
	return c
}

func clusterImage(t testing.TB, api *nodeapi.Client) {
	t.Helper()
	f, err := os.Open(testcluster.ProbeImage(t, probeImage))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := api.ImportImage(context.Background(), f, ""); err != nil {
		t.Fatal(err)
	}
	testcluster.SignNodeImage(t, api, probeImage)
}

// TestLinkAcrossNodes: web's replica on n1 reaches api's replica on n2
// over SSH to n2's gate, logged in with the link's own key, which n2 pins
// in root's authorized_keys (one line, the others untouched) and removes
// with the grant. A replica stopped, then its whole node, is passed over
// for the next endpoint without a failed connection.
func TestLinkAcrossNodes(t *testing.T) {
	c := testcluster.NewCluster(t, 2)
	c.Install("n1")
	c.Install("n2")
	api1, api2 := c.NodeAPI("n1"), c.NodeAPI("n2")
	clusterImage(t, api1)
	clusterImage(t, api2)
	web := clusterApp(t, api1, "web1", "web", nil, "sleep")
	local := clusterApp(t, api1, "api9", "api", []int{8080}, "serve", "127.0.0.1:8080")
	remote := clusterApp(t, api2, "api1", "api", []int{8080}, "serve", "127.0.0.1:8080")
	stopped := clusterApp(t, api2, "api2", "api", []int{8080}, "serve", "127.0.0.1:8080")
	for _, x := range []struct {
		api *nodeapi.Client
		id  string
	}{{api1, local.ID}, {api2, remote.ID}, {api2, stopped.ID}} {
		waitFor(t, x.id+" serving", 20*time.Second, func() bool {
			var up bool
			x.api.Logs(context.Background(), x.id, nodeapi.LogOptions{Tail: -1}, func(e nodeapi.LogEntry) error {
				up = up || strings.HasPrefix(e.Line, "serving")
				return nil
			})
			return up
		})
	}

	keyPath := filepath.Join(t.TempDir(), "link_ed25519")
	signer, err := sshkey.GenerateKey(keyPath, "moat-link")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	id := nodeapi.LinkID("web", "api", 8080)
	grant := nodeapi.LinkGrant{ID: id, Target: "api", Port: 8080, Key: sshkey.AuthorizedKey(signer.PublicKey())}
	n2, _ := c.Node("n2")
	keysFile := filepath.Join(n2.Dir, "root", ".ssh", "authorized_keys")
	before, err := os.ReadFile(keysFile)
	if err != nil {
		t.Fatal(err)
	}
	setLinks(t, api2, nodeapi.LinkTable{Grants: []nodeapi.LinkGrant{grant}})
	after, _ := os.ReadFile(keysFile)
	line := nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, grant) + "\n"
	if string(after) != string(before)+line {
		t.Fatalf("n2's authorized_keys:\n%s\nwant the lines before, then:\n%s", after, line)
	}

	remoteEP := func(name string) nodeapi.LinkEndpoint {
		return nodeapi.LinkEndpoint{Container: name, Node: "n2", Addr: n2.Addr.String() + ":22", User: "root", HostKey: n2.HostKey}
	}
	l := nodeapi.Link{ID: id, Source: "web", Local: 5000, Target: "api", Port: 8080, Key: string(pem),
		Endpoints: []nodeapi.LinkEndpoint{remoteEP("api1")}}
	setLinks(t, api1, nodeapi.LinkTable{Links: []nodeapi.Link{l}})
	waitListener(t, api1, id, web.ID, true)
	if st := linkStatus(t, api1); st.Table.Links[0].Key != "" {
		t.Error("GET /v1/links shows the link's private key")
	}
	if got, err := getFrom(web.Pid, 5000); err != nil || got != "probe api1" {
		t.Fatalf("web1 → api1 on n2: %q, %v", got, err)
	}

	// Half-close across nodes, on a second link with its own key: the
	// sink answers only once its input has ended.
	clusterApp(t, api2, "sink1", "store", []int{9000}, "sink", "127.0.0.1:9000")
	storePath := filepath.Join(t.TempDir(), "store_ed25519")
	storeKey, err := sshkey.GenerateKey(storePath, "moat-link")
	if err != nil {
		t.Fatal(err)
	}
	storePEM, _ := os.ReadFile(storePath)
	sid := nodeapi.LinkID("web", "store", 9000)
	storeGrant := nodeapi.LinkGrant{ID: sid, Target: "store", Port: 9000, Key: sshkey.AuthorizedKey(storeKey.PublicKey())}
	setLinks(t, api2, nodeapi.LinkTable{Grants: []nodeapi.LinkGrant{grant, storeGrant}})
	toStore := nodeapi.Link{ID: sid, Source: "web", Local: 5001, Target: "store", Port: 9000, Key: string(storePEM),
		Endpoints: []nodeapi.LinkEndpoint{{Container: "sink1", Node: "n2", Addr: n2.Addr.String() + ":22", User: "root", HostKey: n2.HostKey}}}
	setLinks(t, api1, nodeapi.LinkTable{Links: []nodeapi.Link{l, toStore}})
	poll(t, "8 MiB through the sink on n2, half-closed", 20*time.Second, func() bool {
		err := sinkFrom(web.Pid, 5001, 8<<20)
		if err != nil {
			t.Logf("sink: %v", err)
		}
		return err == nil
	})

	// Warm: each new connection is a stream on the held session. Against
	// the same request made straight into a replica's namespace (api9,
	// from this host: no link).
	latency(t, "link to n2 over SSH, warm", web.Pid, 5000, "probe api1")
	latency(t, "straight into api9's namespace, no link", local.Pid, 8080, "probe api9")

	// api1 leaves the link's endpoints while a connection to it is held:
	// that connection drains over the SSH connection, which is closed
	// after it.
	held, err := dialFrom(web.Pid, 5000)
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the held connection open", 10*time.Second, func() bool {
		l, _ := findListener(linkStatus(t, api1), id, web.ID)
		return l.Open == 1
	})
	l.Endpoints = []nodeapi.LinkEndpoint{{Container: "api9", Node: "n1"}}
	setLinks(t, api1, nodeapi.LinkTable{Links: []nodeapi.Link{l}})
	if got, err := getFrom(web.Pid, 5000); err != nil || got != "probe api9" {
		t.Fatalf("a new connection with api9 the only endpoint: %q, %v", got, err)
	}
	if n := sshFrom(t, c, "n2", n1Addr(t, c)); n != 1 {
		t.Errorf("%d SSH connections from n1 to n2 while one link connection drains; want 1", n)
	}
	if got, err := get(held); err != nil || got != "probe api1" {
		t.Fatalf("the held connection after api1 left: %q, %v; want it still on api1", got, err)
	}
	poll(t, "n1's SSH connection to n2 closed after its last stream", 10*time.Second, func() bool {
		return sshFrom(t, c, "n2", n1Addr(t, c)) == 0
	})

	// api2 stopped but still listed: its gate answers error, the next
	// endpoint takes the connection.
	if _, err := api2.StopContainer(context.Background(), stopped.ID, nil); err != nil {
		t.Fatal(err)
	}
	l.Endpoints = []nodeapi.LinkEndpoint{remoteEP("api2"), remoteEP("api1")}
	setLinks(t, api1, nodeapi.LinkTable{Links: []nodeapi.Link{l}})
	for i := range 10 {
		if got, err := getFrom(web.Pid, 5000); err != nil || got != "probe api1" {
			t.Fatalf("connection %d with api2 stopped: %q, %v; want probe api1", i, got, err)
		}
	}

	// n2 loses power. A connection whose request went to n2 with its
	// opening, in the instant n2 died, may fail: whether its bytes reached
	// api1 cannot be known, so it is not sent to another replica. Once n2
	// has been silent longer than its keepalives allow, requests wait for
	// the gate's answer before they leave, and every connection reaches
	// api9 on n1: none fails.
	l.Endpoints = []nodeapi.LinkEndpoint{remoteEP("api1"), {Container: "api9", Node: "n1"}}
	setLinks(t, api1, nodeapi.LinkTable{Links: []nodeapi.Link{l}})
	was, _ := findListener(linkStatus(t, api1), id, web.ID)
	if err := c.StopNode("n2"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	early := 0
	earlyQuiet := 2 * sshx.DefaultKeepaliveInterval // the node's: past it, a quiet node's requests wait for the answer
	for time.Since(start) < earlyQuiet {
		if got, err := getFrom(web.Pid, 5000); err != nil || got != "probe api9" {
			early++
		}
	}
	quiet := time.Now()
	for i := range 10 {
		if got, err := getFrom(web.Pid, 5000); err != nil || got != "probe api9" {
			t.Fatalf("connection %d with n2 down %v: %q, %v; want probe api9", i, time.Since(start), got, err)
		}
	}
	t.Logf("n2 powered off: %d connection(s) begun in its first %v failed; 10 after that took %v", early, earlyQuiet, time.Since(quiet))
	if st, _ := findListener(linkStatus(t, api1), id, web.ID); st.Failed != was.Failed+int64(early) {
		t.Errorf("listener %+v; want %d failed connections, those begun as n2 died", st, was.Failed+int64(early))
	}

	// n2 back, api1 started again: the link reconnects on its own.
	if err := c.StartNode("n2"); err != nil {
		t.Fatal(err)
	}
	if _, err := api2.StartContainer(context.Background(), remote.ID); err != nil {
		t.Fatal(err)
	}
	l.Endpoints = []nodeapi.LinkEndpoint{remoteEP("api1")}
	setLinks(t, api1, nodeapi.LinkTable{Links: []nodeapi.Link{l}})
	start = time.Now()
	poll(t, "the link to api1 on n2 back", 40*time.Second, func() bool {
		got, err := getFrom(web.Pid, 5000)
		return err == nil && got == "probe api1"
	})
	t.Logf("the link reached api1 again %v after n2 was back", time.Since(start))

	// The grant goes: its line goes, the others stay as they were.
	setLinks(t, api2, nodeapi.LinkTable{})
	if after, _ := os.ReadFile(keysFile); string(after) != string(before) {
		t.Errorf("n2's authorized_keys after the grant went:\n%s\nwant as before:\n%s", after, before)
	}
}

// sshFrom counts the SSH connections established to a node's sshd from addr.
func sshFrom(t *testing.T, c *testcluster.Cluster, node, addr string) int {
	t.Helper()
	cmd, err := c.Command(node, "ss", "-Htn", "state", "established", "( sport = :22 )")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ss on %s: %v", node, err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, addr+":") {
			n++
		}
	}
	return n
}

func n1Addr(t *testing.T, c *testcluster.Cluster) string {
	n, err := c.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	return n.Addr.String()
}
