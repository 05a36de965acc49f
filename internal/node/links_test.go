package node_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/ns"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// linkNode starts a node whose authorized_keys is a file of the test's,
// holding an operator's line, and returns the file's path.
func linkNode(t *testing.T) (*testcluster.Node, string) {
	t.Helper()
	keys := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(keys, []byte(operatorLine), 0o600); err != nil {
		t.Fatal(err)
	}
	return newNode(t, "--authorized-keys", keys), keys
}

const operatorLine = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorOperatorOperatorOperatorOperatorOp operator@laptop\n"

// app runs a replica of app: labelled moat.app=APP, with its ports declared.
func app(t *testing.T, n *testcluster.Node, name, appKey string, ports []int, cmd ...string) nodeapi.Container {
	t.Helper()
	spec := nodeapi.ContainerSpec{Name: name, Cmd: cmd, Labels: map[string]string{"moat.app": appKey}}
	for _, p := range ports {
		spec.Ports = append(spec.Ports, nodeapi.Port{Port: p})
	}
	run(t, n, spec)
	return waitContainer(t, n, name, "running", func(c nodeapi.Container) bool { return c.State == nodeapi.StateRunning && c.Pid != 0 })
}

func link(source string, local int, target string, port int, endpoints ...string) nodeapi.Link {
	l := nodeapi.Link{ID: nodeapi.LinkID(source, target, port), Source: source, Local: local, Target: target, Port: port}
	for _, e := range endpoints {
		l.Endpoints = append(l.Endpoints, nodeapi.LinkEndpoint{Container: e, Node: "here"})
	}
	return l
}

func setLinks(t testing.TB, c *nodeapi.Client, table nodeapi.LinkTable) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.SetLinks(ctx, table); err != nil {
		t.Fatalf("set links: %v", err)
	}
}

func linkStatus(t testing.TB, c *nodeapi.Client) nodeapi.LinkStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Links(ctx)
	if err != nil {
		t.Fatalf("links: %v", err)
	}
	return st
}

// findListener is the listener of link in container, if open.
func findListener(st nodeapi.LinkStatus, link, container string) (nodeapi.LinkListener, bool) {
	for _, l := range st.Listeners {
		if l.Link == link && l.Container == container {
			return l, true
		}
	}
	return nodeapi.LinkListener{}, false
}

func waitListener(t *testing.T, c *nodeapi.Client, link, container string, open bool) {
	t.Helper()
	waitFor(t, fmt.Sprintf("listener of %s in %s open=%v", link, container, open), 20*time.Second, func() bool {
		_, ok := findListener(linkStatus(t, c), link, container)
		return ok == open
	})
}

// poll waits until cond holds, failing the test or benchmark after timeout.
func poll(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialFrom connects to 127.0.0.1:port inside pid's network namespace, as
// a process in that container would.
func dialFrom(pid, port int) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := ns.DialLoopback(ctx, pid, port)
	if conn != nil {
		conn.SetDeadline(time.Now().Add(15 * time.Second))
	}
	return conn, err
}

// get sends an HTTP/1.0 request on conn and returns the answer's body (the
// probe answers "probe HOSTNAME").
func get(conn net.Conn) (string, error) {
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", err
	}
	_, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok {
		return "", fmt.Errorf("no HTTP answer: %q", b)
	}
	return strings.TrimSpace(body), nil
}

// getFrom asks, from inside pid's container, what answers at 127.0.0.1:port.
func getFrom(pid, port int) (string, error) {
	conn, err := dialFrom(pid, port)
	if err != nil {
		return "", err
	}
	return get(conn)
}

// latency logs how long 200 new connections in a row take to answer an
// HTTP/1.0 request (p50, p90, p99).
func latency(t *testing.T, what string, pid, port int, want string) {
	t.Helper()
	var took []time.Duration
	for range 200 {
		start := time.Now()
		got, err := getFrom(pid, port)
		took = append(took, time.Since(start))
		if err != nil || got != want {
			t.Fatalf("%s: %q, %v", what, got, err)
		}
	}
	slices.Sort(took)
	t.Logf("%s, new connection + HTTP/1.0 request: p50 %v, p90 %v, p99 %v (200 in a row)", what, took[100], took[180], took[198])
}

// sinkFrom sends size bytes to the probe's sink at 127.0.0.1:port in pid's
// namespace, half-closes, and checks the sink read them all: it answers
// only once its input has ended.
func sinkFrom(pid, port, size int) error {
	conn, err := dialFrom(pid, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, strings.Repeat("x", size)); err != nil {
		return err
	}
	conn.(*net.TCPConn).CloseWrite()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if want := fmt.Sprintf("ok %d\n", size); err != nil || line != want {
		return fmt.Errorf("sink answered %q, %v; want %q", line, err, want)
	}
	return nil
}

// TestLinkSameNode: a replica of web reaches app api's declared port at
// 127.0.0.1:LOCAL in its own network namespace, straight into api's
// namespace, half-close included; it reaches nothing else, an undeclared
// port is refused by the node, and containers of other apps get no
// listener.
func TestLinkSameNode(t *testing.T) {
	n, _ := linkNode(t)
	api := app(t, n, "api1", "api", []int{8080}, "serve", "127.0.0.1:8080")
	store := app(t, n, "store1", "store", []int{9000}, "sink", "127.0.0.1:9000")
	web := app(t, n, "web1", "web", nil, "sleep")
	other := app(t, n, "other1", "other", nil, "sleep")
	waitLog(t, n, api.ID, "serving")
	waitLog(t, n, store.ID, "sinking")
	toAPI := link("web", 5000, "api", 8080, "api1")
	toStore := link("web", 5001, "store", 9000, "store1")
	undeclared := link("web", 5002, "api", 7070, "api1")
	setLinks(t, n.Client, nodeapi.LinkTable{Links: []nodeapi.Link{toAPI, toStore, undeclared}})
	for _, l := range []nodeapi.Link{toAPI, toStore, undeclared} {
		waitListener(t, n.Client, l.ID, web.ID, true)
	}

	if got, err := getFrom(web.Pid, 5000); err != nil || got != "probe api1" {
		t.Fatalf("web1 → 127.0.0.1:5000 answered %q, %v; want probe api1", got, err)
	}
	latency(t, "link on the same node", web.Pid, 5000, "probe api1")
	latency(t, "straight into api1's namespace, no link", api.Pid, 8080, "probe api1")
	if err := sinkFrom(web.Pid, 5001, 1<<20); err != nil {
		t.Fatal(err)
	}

	// Nothing else: api's own port is not in web's namespace, and a link
	// to a port api does not declare is accepted, then refused by the node.
	if conn, err := dialFrom(web.Pid, 8080); err == nil {
		conn.Close()
		t.Error("web1 reached 127.0.0.1:8080: that is api's namespace, not web's")
	}
	if got, err := getFrom(web.Pid, 5002); err == nil {
		t.Errorf("a link to undeclared port 7070 answered %q", got)
	}
	if conn, err := dialFrom(other.Pid, 5000); err == nil {
		conn.Close()
		t.Error("a container of app other has web's listener")
	}
	st := linkStatus(t, n.Client)
	if _, ok := findListener(st, toAPI.ID, other.ID); ok || len(st.Listeners) != 3 {
		t.Errorf("listeners %+v; want web1's three only", st.Listeners)
	}
	l, _ := findListener(st, toAPI.ID, web.ID)
	if l.Accepted != 201 || l.Failed != 0 || l.Local != 5000 {
		t.Errorf("listener %+v; want local 5000, 201 accepted, none failed", l)
	}
	waitFor(t, "the undeclared link's connection counted failed", 10*time.Second, func() bool {
		l, _ := findListener(linkStatus(t, n.Client), undeclared.ID, web.ID)
		return l.Failed == 1 && l.Open == 0
	})
	if !strings.Contains(n.Log(), "does not declare tcp port 7070") {
		t.Error("the node's log does not say why the undeclared port was refused")
	}
}

// TestLinkBalanceAndFailover: held connections spread evenly over two
// replicas; with one stopped (still listed), new connections all go to
// the other and none fails.
func TestLinkBalanceAndFailover(t *testing.T) {
	n, _ := linkNode(t)
	a := app(t, n, "api1", "api", []int{8080}, "serve", "127.0.0.1:8080")
	b := app(t, n, "api2", "api", []int{8080}, "serve", "127.0.0.1:8080")
	web := app(t, n, "web1", "web", nil, "sleep")
	waitLog(t, n, a.ID, "serving")
	waitLog(t, n, b.ID, "serving")
	l := link("web", 5000, "api", 8080, "api1", "api2")
	setLinks(t, n.Client, nodeapi.LinkTable{Links: []nodeapi.Link{l}})
	waitListener(t, n.Client, l.ID, web.ID, true)

	var held []net.Conn
	for range 10 {
		conn, err := dialFrom(web.Pid, 5000)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	waitFor(t, "10 connections open", 10*time.Second, func() bool {
		l, _ := findListener(linkStatus(t, n.Client), l.ID, web.ID)
		return l.Open == 10
	})
	spread := map[string]int{}
	for _, c := range held {
		got, err := get(c)
		if err != nil {
			t.Fatal(err)
		}
		spread[got]++
	}
	if spread["probe api1"] != 5 || spread["probe api2"] != 5 {
		t.Errorf("10 held connections went %v; want 5 and 5", spread)
	}

	if _, err := n.Client.StopContainer(context.Background(), b.ID, nil); err != nil {
		t.Fatal(err)
	}
	waitContainer(t, n, b.ID, "stopped", exited)
	for i := range 20 {
		if got, err := getFrom(web.Pid, 5000); err != nil || got != "probe api1" {
			t.Fatalf("connection %d with api2 stopped: %q, %v; want probe api1", i, got, err)
		}
	}
	if st, _ := findListener(linkStatus(t, n.Client), l.ID, web.ID); st.Failed != 0 || st.Accepted != 30 {
		t.Errorf("listener %+v; want 30 accepted, none failed", st)
	}
}

// TestLinkDaemonRestart: a daemon killed and started again opens the
// listeners of the table it saved, with no master to send it again, and
// a source container restarted gets its listener back in its new
// namespace.
func TestLinkDaemonRestart(t *testing.T) {
	n, keys := linkNode(t)
	api := app(t, n, "api1", "api", []int{8080}, "serve", "127.0.0.1:8080")
	web := app(t, n, "web1", "web", nil, "sleep")
	waitLog(t, n, api.ID, "serving")
	l := link("web", 5000, "api", 8080, "api1")
	g := nodeapi.LinkGrant{ID: "web>api:8080", Target: "api", Port: 8080, Key: newPublicKey(t)}
	setLinks(t, n.Client, nodeapi.LinkTable{Links: []nodeapi.Link{l}, Grants: []nodeapi.LinkGrant{g}})
	waitListener(t, n.Client, l.ID, web.ID, true)
	if st, err := os.Stat(nodeapi.Layout{Root: n.Root}.Links()); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saved table: %v, %v; want mode 0600", st, err)
	}

	n.Kill9()
	if conn, err := dialFrom(web.Pid, 5000); err == nil {
		conn.Close()
		t.Error("the listener outlived the daemon")
	}
	// Meanwhile the grant's line is lost: the daemon puts it back.
	if err := os.WriteFile(keys, []byte(operatorLine), 0o600); err != nil {
		t.Fatal(err)
	}
	n.Start()
	waitFor(t, "the listener back after the restart", 20*time.Second, func() bool {
		got, err := getFrom(web.Pid, 5000)
		return err == nil && got == "probe api1"
	})
	if got, _ := os.ReadFile(keys); string(got) != operatorLine+nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, g)+"\n" {
		t.Errorf("authorized_keys after the restart:\n%s\nwant the grant's line back", got)
	}

	ctx := context.Background()
	if _, err := n.Client.StopContainer(ctx, web.ID, nil); err != nil {
		t.Fatal(err)
	}
	waitListener(t, n.Client, l.ID, web.ID, false)
	if _, err := n.Client.StartContainer(ctx, web.ID); err != nil {
		t.Fatal(err)
	}
	web = waitContainer(t, n, web.ID, "running again", func(c nodeapi.Container) bool { return c.State == nodeapi.StateRunning && c.Pid != 0 })
	waitFor(t, "the listener in the new run", 20*time.Second, func() bool {
		got, err := getFrom(web.Pid, 5000)
		return err == nil && got == "probe api1"
	})
}

// TestLinkTableUpdate: grants become authorized_keys lines (one each,
// every other line untouched) and go with the grant; a bad table changes
// nothing; endpoints changed under a held connection let it drain; a link
// removed closes its listener and cuts its connections.
func TestLinkTableUpdate(t *testing.T) {
	n, keys := linkNode(t)
	a := app(t, n, "api1", "api", []int{8080}, "serve", "127.0.0.1:8080")
	b := app(t, n, "api2", "api", []int{8080}, "serve", "127.0.0.1:8080")
	cache := app(t, n, "cache1", "cache", []int{8080}, "serve", "127.0.0.1:8080")
	web := app(t, n, "web1", "web", nil, "sleep")
	waitLog(t, n, a.ID, "serving")
	waitLog(t, n, b.ID, "serving")
	waitLog(t, n, cache.ID, "serving")
	toAPI := link("web", 5000, "api", 8080, "api1")
	toCache := link("web", 5001, "cache", 8080, "cache1")
	g1 := nodeapi.LinkGrant{ID: "web>api:8080", Target: "api", Port: 8080, Key: newPublicKey(t)}
	g2 := nodeapi.LinkGrant{ID: "web>db:5432", Target: "db", Port: 5432, Key: newPublicKey(t)}
	setLinks(t, n.Client, nodeapi.LinkTable{Links: []nodeapi.Link{toAPI, toCache}, Grants: []nodeapi.LinkGrant{g1, g2}})
	want := operatorLine + nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, g1) + "\n" + nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, g2) + "\n"
	if got, _ := os.ReadFile(keys); string(got) != want {
		t.Fatalf("authorized_keys:\n%s\nwant:\n%s", got, want)
	}

	// A bad table: 400 naming the field, and nothing changed.
	bad := nodeapi.LinkTable{Links: []nodeapi.Link{toAPI}, Grants: []nodeapi.LinkGrant{{ID: "x", Target: "db", Port: 0, Key: g1.Key}}}
	err := n.Client.SetLinks(context.Background(), bad)
	if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "grants[0].port") {
		t.Errorf("bad table: %v; want invalid grants[0].port", err)
	}
	if got, _ := os.ReadFile(keys); string(got) != want {
		t.Errorf("a bad table changed authorized_keys:\n%s", got)
	}
	if st := linkStatus(t, n.Client); len(st.Table.Links) != 2 || len(st.Table.Grants) != 2 {
		t.Errorf("a bad table changed the table: %+v", st.Table)
	}
	waitListener(t, n.Client, toAPI.ID, web.ID, true)
	waitListener(t, n.Client, toCache.ID, web.ID, true)

	// Held connections on both links; then api1 leaves toAPI's endpoints
	// (api2 joins) and toCache leaves the table.
	drain, err := dialFrom(web.Pid, 5000)
	if err != nil {
		t.Fatal(err)
	}
	cut, err := dialFrom(web.Pid, 5001)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both connections open", 10*time.Second, func() bool {
		st := linkStatus(t, n.Client)
		l1, _ := findListener(st, toAPI.ID, web.ID)
		l2, _ := findListener(st, toCache.ID, web.ID)
		return l1.Open == 1 && l2.Open == 1
	})
	moved := link("web", 5000, "api", 8080, "api2")
	setLinks(t, n.Client, nodeapi.LinkTable{Links: []nodeapi.Link{moved}, Grants: []nodeapi.LinkGrant{g2}})
	want = operatorLine + nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, g2) + "\n"
	if got, _ := os.ReadFile(keys); string(got) != want {
		t.Errorf("after removing a grant, authorized_keys:\n%s\nwant:\n%s", got, want)
	}
	if got, err := getFrom(web.Pid, 5000); err != nil || got != "probe api2" {
		t.Errorf("a new connection after the change: %q, %v; want probe api2", got, err)
	}
	if got, err := get(drain); err != nil || got != "probe api1" {
		t.Errorf("the connection held across the change: %q, %v; want it still on api1", got, err)
	}
	waitListener(t, n.Client, toCache.ID, web.ID, false)
	if conn, err := dialFrom(web.Pid, 5001); err == nil {
		conn.Close()
		t.Error("the removed link's listener still accepts")
	}
	if got, err := get(cut); err == nil {
		t.Errorf("the removed link's connection still answered %q", got)
	}
	setLinks(t, n.Client, nodeapi.LinkTable{})
	if got, _ := os.ReadFile(keys); string(got) != operatorLine {
		t.Errorf("with no grants left, authorized_keys:\n%s\nwant the operator's line only", got)
	}
	waitListener(t, n.Client, moved.ID, web.ID, false)
}

// TestLinkLocalPortTaken: a source container that already listens on
// LOCAL itself gets no listener, and the node says so once and goes on;
// once the port is free, the listener opens.
func TestLinkLocalPortTaken(t *testing.T) {
	n, _ := linkNode(t)
	api := app(t, n, "api1", "api", []int{8080}, "serve", "127.0.0.1:8080")
	squat := app(t, n, "web2", "web", nil, "serve", "127.0.0.1:5000")
	web := app(t, n, "web1", "web", nil, "sleep")
	waitLog(t, n, api.ID, "serving")
	waitLog(t, n, squat.ID, "serving")
	// web1's port is held for a while (by this test, in web1's namespace).
	held, err := ns.ListenLoopback(web.Pid, 5000)
	if err != nil {
		t.Fatal(err)
	}
	l := link("web", 5000, "api", 8080, "api1")
	setLinks(t, n.Client, nodeapi.LinkTable{Links: []nodeapi.Link{l}})
	waitFor(t, "the node to log the ports taken", 10*time.Second, func() bool {
		return strings.Count(n.Log(), "link listener not open") == 2
	})
	if st := linkStatus(t, n.Client); len(st.Listeners) != 0 {
		t.Errorf("listeners %+v on ports taken", st.Listeners)
	}
	if got, err := getFrom(squat.Pid, 5000); err != nil || got != "probe web2" {
		t.Errorf("web2's own server: %q, %v", got, err)
	}
	held.Close()
	waitListener(t, n.Client, l.ID, web.ID, true)
	if got, err := getFrom(web.Pid, 5000); err != nil || got != "probe api1" {
		t.Errorf("web1 through the link: %q, %v", got, err)
	}
	if c := strings.Count(n.Log(), "link listener not open"); c != 2 {
		t.Errorf("the node logged the ports taken %d times; want once each", c)
	}
	if _, ok := findListener(linkStatus(t, n.Client), l.ID, squat.ID); ok {
		t.Error("web2 has a listener on a port it holds itself")
	}
}

// newPublicKey is a fresh ed25519 public key in authorized_keys form, as
// the master makes for a link.
func newPublicKey(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshkey.AuthorizedKey(k)
}
