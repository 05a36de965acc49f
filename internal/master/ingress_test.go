package master_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// newEdgeEnv is newEnv with n1 an edge (edge=true in its node.conf, as
// moat node add --edge writes it): it serves ingress on :80 and :443 of
// its own network namespace.
func newEdgeEnv(t *testing.T, nodes int) *env {
	t.Helper()
	c := testcluster.NewCluster(t, nodes)
	c.AddNodeConf("n1", "edge=true")
	m := c.StartMaster()
	var names []string
	for _, n := range c.Nodes {
		names = append(names, n.Name)
	}
	c.Enrol(m, names...)
	m.ImportProbe(t, "probe:1")
	return &env{t: t, c: c, m: m}
}

// ingressSpec is the probe behind the edge for host, with a short drain.
func ingressSpec(name, host string, replicas int, extra ...string) string {
	return fmt.Sprintf(`name: %s
image: probe:1
replicas: %d
args: [serve, ":8080"]
resources: {cpu: 100m, memory: 32Mi}
ports: [{name: http, port: 8080}]
health: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}
update: {deadline: 20s, drain: 2s}
placement: {spread: true}
ingress: [{host: %s, port: http}]
%s`, name, replicas, host, strings.Join(extra, "\n"))
}

// edgeGet sends GET path for host to the edge at addr (host:port).
func edgeGet(c *http.Client, addr, host, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// edgePost sends POST / with a body for host to the edge at addr.
func edgePost(c *http.Client, addr, host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader("hello"))
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

func (e *env) nodeAddr(name string) string {
	e.t.Helper()
	n, err := e.c.Node(name)
	if err != nil {
		e.t.Fatal(err)
	}
	return n.Addr.String()
}

// TestIngress: the edge node n1 answers, from the host, requests for
// web.test with web's replicas (several of them), other hosts with 404;
// a second app's route appears without cutting a stream open on web's; a
// node that is not an edge ignores ingress in its table and listens on
// nothing.
func TestIngress(t *testing.T) {
	e := newEdgeEnv(t, 3)
	edge := net.JoinHostPort(e.nodeAddr("n1"), "80")
	r := e.deploy(ingressSpec("web", "web.test", 3))
	e.wait("web", r.Revision)

	// Concurrent requests open several upstream connections, each to
	// the least busy replica: all three answer. Each round sends more
	// at once than the edge holds connections, so it opens new ones: the
	// edge keeps its idle connections, and a replica that joined its
	// table after the first round would get none of the kept ones.
	client := &http.Client{Timeout: 10 * time.Second}
	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for round := 1; len(seen) < 3; round++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range min(6*round, 60) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body, err := edgeGet(client, edge, "web.test", "/")
				mu.Lock()
				defer mu.Unlock()
				if err == nil && code == http.StatusOK && strings.HasPrefix(body, "probe web-") {
					seen[strings.TrimPrefix(body, "probe ")] = true
				} else {
					last = fmt.Sprintf("%d %q %v", code, body, err)
				}
			}()
		}
		wg.Wait()
		if time.Now().After(deadline) {
			st, err := e.c.NodeAPI("n1").Links(context.Background())
			t.Fatalf("web.test through the edge within 30s: answered by %v, last other answer %s; want 3 replicas (the edge's links: %+v, %v)", seen, last, st.Table.Links, err)
		}
	}
	if code, body, err := edgeGet(client, edge, "other.test", "/"); err != nil || code != http.StatusNotFound {
		t.Errorf("other.test through the edge: %d %q %v, want 404", code, body, err)
	}

	// A stream on web stays open while api's route is added.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+edge+"/stream", nil)
	req.Host = "web.test"
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	defer resp.Body.Close()
	lines, streamErr := countLines(resp.Body)
	r = e.deploy(ingressSpec("api", "api.test", 1))
	e.wait("api", r.Revision)
	deadline = time.Now().Add(20 * time.Second)
	for {
		code, body, err := edgeGet(client, edge, "api.test", "/")
		if err == nil && code == http.StatusOK && strings.HasPrefix(body, "probe api-") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("api.test through the edge within 20s: %d %q %v", code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := lines.Load()
	deadline = time.Now().Add(5 * time.Second)
	for lines.Load() < before+5 {
		select {
		case err := <-streamErr:
			t.Fatalf("web's stream, after api's route was added: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("web's stream stalled after api's route was added: %d lines, %d before", lines.Load(), before)
		}
	}
	cancel()

	// n2 is no edge: a table with ingress is taken, its ingress ignored.
	n2 := e.c.NodeAPI("n2")
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	id := nodeapi.LinkID(nodeapi.EdgeSource, "web", 8080)
	err = n2.SetLinks(tctx, nodeapi.LinkTable{
		Links:   []nodeapi.Link{{ID: id, Source: nodeapi.EdgeSource, Target: "web", Port: 8080}},
		Ingress: []nodeapi.IngressRoute{{Host: "web.test", App: "web", Port: 8080, Link: id}},
	})
	if err != nil {
		t.Fatalf("a table with ingress sent to n2: %v", err)
	}
	for _, port := range []string{"80", "443"} {
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort(e.nodeAddr("n2"), port), 2*time.Second); err == nil {
			conn.Close()
			t.Errorf("n2, no edge, accepts connections on port %s", port)
		}
	}
	st, err := n2.Links(tctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Listeners {
		if l.Link == id {
			t.Errorf("n2 opened a listener for the edge's link: %+v", l)
		}
	}
}

// TestIngressRollingDeploy: continuous load through the edge while web
// (3 replicas) is redeployed, rolling: every request is answered. The
// old replicas leave the edge's table and drain (2 s) before they are
// stopped; the edge stops reusing its connections to them as soon as
// its table changes, so none is in use when they stop.
func TestIngressRollingDeploy(t *testing.T) {
	e := newEdgeEnv(t, 3)
	edge := net.JoinHostPort(e.nodeAddr("n1"), "80")
	r := e.deploy(ingressSpec("web", "web.test", 3))
	e.wait("web", r.Revision)
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, err := edgeGet(client, edge, "web.test", "/")
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web.test through the edge within 30s: %d %v", code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	old := map[string]bool{}
	for _, rep := range e.replicas("web") {
		old[rep.ID] = true
	}
	load := newLoad(edge, "web.test", 4)
	r = e.deploy(ingressSpec("web", "web.test", 3, "env: {REVISION: \"2\"}"))
	e.wait("web", r.Revision)
	// The load goes on a little after the rollout: until the old
	// replicas are stopped, and a few hundred requests more.
	deadline = time.Now().Add(30 * time.Second)
	for n := load.ok.Load() + 300; ; {
		running := 0
		for _, rep := range e.replicas("web") {
			if old[rep.ID] {
				running++
			}
		}
		if running == 0 && load.ok.Load() >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after the rollout: %d old replicas left, %d requests answered", running, load.ok.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ok, failed, errs := load.stop()
	t.Logf("rolling deploy of 3 replicas under load through the edge: %d requests answered, %d failed", ok, failed)
	if ok == 0 || failed > 0 {
		t.Errorf("%d requests failed of %d (first errors: %v)", failed, ok+failed, errs)
	}
	// Answers now come from the new replicas only.
	for range 20 {
		code, body, err := edgeGet(client, edge, "web.test", "/")
		if err != nil || code != http.StatusOK || old[strings.TrimPrefix(body, "probe ")] {
			t.Fatalf("after the rollout: %d %q %v, want a new replica", code, body, err)
		}
	}
}

// load is clients sending requests through the edge, one at a time each,
// over kept-alive connections, until stopped. The requests are POSTs with
// a body, which nothing retries (the edge's Transport retries a GET that
// a closing upstream connection lost, so GETs would hide such losses).
type load struct {
	stopped    atomic.Bool
	wg         sync.WaitGroup
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	began      []time.Time // when each failed request was begun
}

func newLoad(addr, host string, clients int) *load {
	return newLoadOf(addr, host, clients, edgePost)
}

// newLoadOf is newLoad with requests sent by send.
func newLoadOf(addr, host string, clients int, send func(c *http.Client, addr, host string) (int, string, error)) *load {
	l := &load{}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for !l.stopped.Load() {
				began := time.Now()
				code, body, err := send(c, addr, host)
				if err == nil && code == http.StatusOK {
					l.ok.Add(1)
					continue
				}
				l.failed.Add(1)
				l.mu.Lock()
				l.began = append(l.began, began)
				if len(l.errs) < 5 {
					l.errs = append(l.errs, fmt.Sprintf("%s: %d %q %v", time.Now().Format("15:04:05.000"), code, body, err))
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) stop() (ok, failed int64, errs []string) {
	l.stopped.Store(true)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.errs
}

// TestIngressNodeKill: a node holding one of web's replicas loses power
// under load through the edge. Every request begun once its link has been
// down half a second gets an answer, POSTs too: one sent on a kept-alive
// connection to the dead replica goes to another once the node is found
// dead (2.7 s), its kernel having acknowledged none of it (sshx.Delivery).
// Requests begun before, or in that first half second (which the edge
// cannot tell from them), may fail, having maybe been in flight to it:
// nothing sends again a request that could have been done. GETs all get
// answers (sent again when nothing of an answer came back).
func TestIngressNodeKill(t *testing.T) {
	// undecided bounds how long into a node's silence a request it never
	// got cannot be told from one it got just before it died: sshx calls
	// bytes surely undelivered only once written two keepalive intervals
	// and 100 ms into the silence (0.5 s in tests); 0.7 s leaves a margin.
	const undecided = 700 * time.Millisecond
	e := newEdgeEnv(t, 3)
	edge := net.JoinHostPort(e.nodeAddr("n1"), "80")
	r := e.deploy(ingressSpec("web", "web.test", 3))
	e.wait("web", r.Revision)
	e.waitReplicas("web", "a replica of web on each node", 30*time.Second, func(reps []masterapi.Replica) bool {
		n, nodes := ready(reps)
		return n == 3 && len(nodes) == 3
	})
	onN3 := ""
	for _, rep := range e.replicas("web") {
		if rep.Node == "n3" {
			onN3 = "probe " + rep.ID
		}
	}
	// The edge balances connections: requests at once, each on its own
	// connection, reach every replica, n3's too.
	deadline := time.Now().Add(30 * time.Second)
	for seen := map[string]bool{}; !seen[onN3]; {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 12 {
			wg.Go(func() {
				c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
				if code, body, err := edgeGet(c, edge, "web.test", "/"); err == nil && code == http.StatusOK {
					mu.Lock()
					seen[body] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if time.Now().After(deadline) {
			t.Fatalf("%s through the edge within 30s: answered by %v", onN3, seen)
		}
	}
	// Many requests at once leave many upstream connections idle at the
	// edge, to each replica.
	if failed, _ := postBurst(edge, "web.test", 32); len(failed) > 0 {
		t.Fatalf("POSTs failed before any node was stopped: %v", failed)
	}
	gets := newLoadOf(edge, "web.test", 4, func(c *http.Client, addr, host string) (int, string, error) {
		return edgeGet(c, addr, host, "/")
	})
	posts := newLoad(edge, "web.test", 2)
	// The power goes: the link first (so n3 acknowledges nothing more,
	// sends no reset, nothing at all), then StopNode (which takes the
	// link down again) kills its processes. Once CutLink has returned,
	// nothing more reaches n3.
	if err := e.c.CutLink("n3"); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	if err := e.c.StopNode("n3"); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// Once a live node would have been heard (sshx: two keepalive
	// intervals and a round trip into the silence), a burst of POSTs
	// takes the edge's idle upstream connections, n3's among them (the
	// burst before the cut left some): those must go to another replica
	// when n3 is found dead.
	time.Sleep(time.Until(cut.Add(undecided)))
	burstFailed, burstSlow := postBurst(edge, "web.test", 32)
	t.Logf("a burst of 32 POSTs %v after the link went down: %d failed, %d answered after waiting for n3 to be found dead", undecided, len(burstFailed), burstSlow)
	if len(burstFailed) > 0 {
		t.Errorf("POSTs begun after n3's link went down failed: %v", burstFailed)
	}
	if burstSlow == 0 {
		t.Log("no POST of the burst went to n3: what happens to those was not seen this time")
	}
	e.waitReplicas("web", "3 replicas ready again, none on n3", 30*time.Second, func(reps []masterapi.Replica) bool {
		n, nodes := ready(reps)
		return n == 3 && nodes["n3"] == 0
	})
	recovered := time.Since(killed)
	for n := gets.ok.Load() + 300; gets.ok.Load() < n; {
		if time.Since(killed) > 60*time.Second {
			t.Fatalf("the load stalled: %d GETs answered", gets.ok.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ok, failed, errs := gets.stop()
	pok, pfailed, perrs := posts.stop()
	t.Logf("n3 powered off under load through the edge: 3 replicas ready again after %v; GETs %d answered, %d failed; POSTs %d answered, %d failed %v",
		recovered.Round(10*time.Millisecond), ok, failed, pok, pfailed, perrs)
	// A request begun once the link was down never reached n3, but in the
	// first moments of the silence the edge cannot tell it from one that
	// reached n3 just before (n3's kernel may have held back its ACK), so
	// it may fail as one in flight would. Any request begun later must
	// have been answered, whatever its method.
	for _, b := range append(gets.began, posts.began...) {
		switch {
		case b.After(cut.Add(undecided)):
			t.Errorf("a request begun %v after n3's link went down failed", b.Sub(cut).Round(time.Millisecond))
		case b.After(cut):
			t.Logf("a request begun %v after n3's link went down failed: the edge could not yet tell it from one in flight", b.Sub(cut).Round(time.Millisecond))
		default:
			t.Logf("a request begun %v before n3's link went down failed", cut.Sub(b).Round(time.Millisecond))
		}
	}
	if ok == 0 || failed > 0 {
		t.Errorf("%d GETs failed of %d (first errors: %v)", failed, ok+failed, errs)
	}
}

// postBurst sends n POSTs through the edge at once, each on a connection
// of its own, and says which failed and how many took over a second.
func postBurst(edge, host string, n int) (failed []string, slow int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			<-start
			began := time.Now()
			code, body, err := edgePost(c, edge, host)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil || code != http.StatusOK:
				failed = append(failed, fmt.Sprintf("%d %q %v", code, body, err))
			case time.Since(began) > time.Second:
				slow++
			}
		})
	}
	close(start)
	wg.Wait()
	return failed, slow
}

// countLines counts the lines of a streamed body as they arrive; the
// channel says why the stream ended, if it does.
func countLines(body io.Reader) (*atomic.Int64, <-chan error) {
	lines := &atomic.Int64{}
	ended := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			lines.Add(1)
		}
		ended <- fmt.Errorf("stream ended after %d lines: %v", lines.Load(), sc.Err())
	}()
	return lines, ended
}
