package edge

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// undeliveredConn stands in for the node daemon's link streams: it says
// whether what was written on it never reached the peer.
type undeliveredConn struct {
	net.Conn
	undelivered bool
}

func (c *undeliveredConn) Undelivered() bool { return c.undelivered }

// swallower accepts connections and closes each once it has read
// something: a replica that went away under the request. It counts the
// connections that got bytes.
func swallower(t *testing.T) (addr string, got *atomic.Int32) {
	got = new(atomic.Int32)
	addr, _ = rawApp(t, func(_ int32, c net.Conn, br *bufio.Reader) {
		if _, err := br.ReadByte(); err == nil {
			got.Add(1)
		}
	})
	return addr, got
}

// echoBody answers with the request's method and body, and counts them.
func echoBody(n *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(b))
	})
}

// TestReplayUndelivered: a request that failed on a connection saying its
// bytes never arrived goes again on a new connection, POSTs too, when
// its body was kept (known length up to 64 KiB); one that may have
// arrived, or whose body was streamed, fails with a 502.
func TestReplayUndelivered(t *testing.T) {
	dead, deadGot := swallower(t)
	var served atomic.Int32
	good := serveBackend(t, echoBody(&served))
	// Each dial of "app" goes first to the dead replica, then to the good
	// one (as the daemon's Dial would pick another replica).
	var dials atomic.Int32
	var claim atomic.Bool // what the dead replica's connections say
	dial := func(ctx context.Context, app string, port int) (net.Conn, error) {
		addr := good
		if dials.Add(1)%2 == 1 {
			addr = dead
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &undeliveredConn{Conn: c, undelivered: addr == dead && claim.Load()}, nil
	}
	s, addr := startEdge(t, Config{Dial: dial})
	if err := s.SetTable(Table{Routes: []Route{{Host: "r.test", App: "app", Port: 80}}}); err != nil {
		t.Fatal(err)
	}
	post := func(body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(body))
		req.Host = "r.test"
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	claim.Store(true)
	for i := range 3 {
		s.CloseIdleUpstreams() // each POST dials: first the dead replica
		dials.Store(0)
		if code, body := post("hello"); code != 200 || body != "POST hello" {
			t.Fatalf("POST %d: %d %q, want it sent again to the good replica", i, code, body)
		}
	}
	if served.Load() != 3 {
		t.Errorf("the good replica served %d requests, want 3", served.Load())
	}
	// A request asking for an upgrade (the ReverseProxy path) too.
	s.CloseIdleUpstreams()
	dials.Store(0)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = "r.test"
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "x-test")
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "GET " {
		t.Fatalf("upgrade GET: %d %q, want it sent again to the good replica", resp.StatusCode, b)
	}
	served.Store(3)

	// A body over 64 KiB is streamed, not kept: no second try.
	s.CloseIdleUpstreams()
	dials.Store(0)
	if code, _ := post(strings.Repeat("x", maxReplayBody+1)); code != http.StatusBadGateway {
		t.Errorf("POST of a large body on an undelivered connection: %d, want 502 (not sent again)", code)
	}

	// Connections that cannot say the bytes never arrived: the POST is
	// not sent again (the app may have taken it).
	claim.Store(false)
	s.CloseIdleUpstreams()
	dials.Store(0)
	before := deadGot.Load()
	if code, _ := post("hello"); code != http.StatusBadGateway {
		t.Errorf("POST on a connection that may have delivered it: %d, want 502", code)
	}
	waitFor(t, func() bool { return deadGot.Load() > before })
	if served.Load() != 3 {
		t.Errorf("the good replica served %d requests, want still 3", served.Load())
	}
}

// TestKeptAliveClosedByApp: apps close idle keep-alive connections on
// their own timers. A POST is not sent on one that the app closed (it
// could not be sent twice), and a GET that broke on one goes again, as
// with Go's Transport.
func TestKeptAliveClosedByApp(t *testing.T) {
	// Each connection answers one request, keeping it alive, then closes
	// it: closed tells when.
	closed := make(chan struct{}, 16)
	app, _ := rawApp(t, func(_ int32, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err == nil {
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		c.Close()
		closed <- struct{}{}
	})
	bk := newBackends()
	bk.set("app", 80, app)
	s, addr := startEdge(t, Config{Dial: bk.Dial})
	if err := s.SetTable(Table{Routes: []Route{{Host: "k.test", App: "app", Port: 80}}}); err != nil {
		t.Fatal(err)
	}
	send := func(method string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+"/", strings.NewReader("body"))
		if method == "GET" {
			req.Body, req.ContentLength = nil, 0
		}
		req.Host = "k.test"
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	wait := func() {
		t.Helper()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the app did not close its connection")
		}
	}
	for i, method := range []string{"GET", "POST", "POST", "GET", "GET"} {
		if code := send(method); code != 200 {
			t.Fatalf("request %d (%s) on a connection the app closed: %d, want 200", i, method, code)
		}
		wait() // the connection the edge kept is now closed by the app
	}
	if n := bk.dialCount("app", 80); n < 5 {
		t.Errorf("%d dials for 5 requests each on a closed connection, want 5 or more", n)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond) // polling, with a deadline
	}
}

// TestPoolOfClosedConnections: an app that closed all its idle keep-alive
// connections at once (a restart in place, a keep-alive timer) costs no
// request a 502, however many the edge held: a request that broke on one
// goes again on a new connection, not on the next closed one.
func TestPoolOfClosedConnections(t *testing.T) {
	const n = 12
	var arrived sync.WaitGroup
	arrived.Add(n)
	release := make(chan struct{})
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			arrived.Done()
			<-release
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	bk := newBackends()
	bk.set("app", 80, l.Addr().String())
	s, addr := startEdge(t, Config{Dial: bk.Dial})
	if err := s.SetTable(Table{Routes: []Route{{Host: "c.test", App: "app", Port: 80}}}); err != nil {
		t.Fatal(err)
	}
	send := func(method, path string) int {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader("x"))
		req.Host = "c.test"
		resp, err := client().Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// n requests at once: n pooled connections once they are answered.
	var done sync.WaitGroup
	for range n {
		done.Add(1)
		go func() { defer done.Done(); send("GET", "/hold") }()
	}
	arrived.Wait()
	close(release)
	done.Wait()
	if d := bk.dialCount("app", 80); d != n {
		t.Fatalf("%d dials for %d requests at once, want %d", d, n, n)
	}
	// The app closes every idle connection, as on a restart in place.
	srv.SetKeepAlivesEnabled(false)
	for i := range n {
		method := "GET"
		if i%2 == 1 {
			method = "POST"
		}
		if code := send(method, "/"); code != 200 {
			t.Fatalf("%s %d after the app closed its idle connections: %d, want 200", method, i, code)
		}
	}
}
