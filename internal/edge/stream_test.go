package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sse serves one stream of server-sent events at a time: it writes event
// i, then waits for the test to say it saw it (next) before writing i+1.
// So a test that reads event i before sending on next proves the proxy
// holds nothing back: were it buffering, the event would never arrive.
// With another content type it is any streamed body of unknown length.
type sse struct {
	name  string
	ctype string
	next  chan struct{}
}

func newSSE(name string) *sse {
	return &sse{name: name, ctype: "text/event-stream", next: make(chan struct{})}
}

func (s *sse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", s.ctype)
	rc := http.NewResponseController(w)
	for i := 0; ; i++ {
		fmt.Fprintf(w, "data: %s %d\n\n", s.name, i)
		if rc.Flush() != nil {
			return
		}
		select {
		case <-s.next:
		case <-r.Context().Done():
			return
		}
	}
}

// sseClient reads events from a stream through the edge.
type sseClient struct {
	r    *bufio.Reader
	resp *http.Response
	src  *sse
	n    int
}

func openSSE(t testing.TB, c *http.Client, url, host string, src *sse) *sseClient {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("open event stream: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("open event stream: %s", resp.Status)
	}
	s := &sseClient{r: bufio.NewReader(resp.Body), resp: resp, src: src}
	s.expect(t)
	return s
}

// expect reads the next event, which must be the one the backend wrote
// last, within a deadline; then lets the backend write the next.
func (s *sseClient) expect(t testing.TB) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		line, err := s.r.ReadString('\n')
		if err == nil {
			_, err = s.r.ReadString('\n') // the blank line ending the event
		}
		if want := fmt.Sprintf("data: %s %d\n", s.src.name, s.n); err == nil && line != want {
			err = fmt.Errorf("event %q, want %q", line, want)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("event %d of %s did not arrive: buffered or lost", s.n, s.src.name)
	}
	s.n++
	select {
	case s.src.next <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatalf("backend %s stopped streaming", s.src.name)
	}
}

// TestStreamsSurviveTableChanges holds a WebSocket and an event stream on
// route A open while the table changes under them: another route, their
// own route, and another app's replicas. Each change is followed by an
// exchange on both streams, and by a new request showing the change took.
func TestStreamsSurviveTableChanges(t *testing.T) {
	bk := newBackends()
	events := newSSE("a")
	mux := http.NewServeMux()
	mux.Handle("/ws", wsEcho("a"))
	mux.Handle("/sse", events)
	mux.Handle("/", named("a"))
	bk.set("a", 80, serveBackend(t, mux))
	bk.set("a2", 80, serveBackend(t, named("a2")))
	bk.set("b", 80, serveBackend(t, named("b")))
	bk.set("b", 81, serveBackend(t, named("b81")))
	s, addr := startEdge(t, Config{Dial: bk.Dial})
	set := func(routes ...Route) {
		t.Helper()
		if err := s.SetTable(Table{Routes: routes}); err != nil {
			t.Fatal(err)
		}
	}
	routeA := Route{Host: "a.test", App: "a", Port: 80}
	set(routeA, Route{Host: "b.test", App: "b", Port: 80})

	ws := wsDial(t, addr, "a.test", "/ws")
	ev := openSSE(t, client(), "http://"+addr+"/sse", "a.test", events)
	check := func(step string) {
		t.Helper()
		got, err := ws.roundTrip(step)
		if err != nil || got != "a: "+step {
			t.Fatalf("%s: websocket gave %q, %v; want the same stream to a", step, got, err)
		}
		ev.expect(t)
	}
	check("opened")
	expectBackend := func(host, want string) {
		t.Helper()
		if _, body := get(t, addr, host, "/"); firstWord(body) != want {
			t.Fatalf("new request to %s went to %q, want %s", host, body, want)
		}
	}

	set(routeA, Route{Host: "b.test", App: "b", Port: 81}, Route{Host: "c.test", App: "b", Port: 80})
	check("route b changed")
	expectBackend("b.test", "b81")

	set(Route{Host: "a.test", App: "a2", Port: 80}, Route{Host: "b.test", App: "b", Port: 81})
	check("route a changed")
	expectBackend("a.test", "a2")

	bk.set("b", 81, serveBackend(t, named("b81new")))
	s.CloseIdleUpstreams()
	check("b's replicas changed")
	expectBackend("b.test", "b81new")

	set()
	check("table emptied")
	if status, _ := get(t, addr, "a.test", "/"); status != 404 {
		t.Fatalf("empty table: %d, want 404", status)
	}

	// Stopping the edge waits for requests, then ends the streams that
	// never finish: the event stream and the hijacked WebSocket.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with two open streams: %v, want the deadline", err)
	}
	if got, err := ws.roundTrip("after shutdown"); err == nil {
		t.Errorf("websocket after Shutdown: %q, want it closed", got)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("websocket after Shutdown: still open (%v)", err)
	}
	ev.resp.Body.Close()
}

// TestStreamedBodyUnbuffered: a body of unknown length that is not an
// event stream (a download produced as it goes, a log follow) reaches the
// client chunk by chunk too.
func TestStreamedBodyUnbuffered(t *testing.T) {
	stream := newSSE("body")
	stream.ctype = "application/octet-stream"
	bk := newBackends()
	bk.set("dl", 80, serveBackend(t, stream))
	s, addr := startEdge(t, Config{Dial: bk.Dial})
	if err := s.SetTable(Table{Routes: []Route{{Host: "dl.test", App: "dl", Port: 80}}}); err != nil {
		t.Fatal(err)
	}
	c := openSSE(t, client(), "http://"+addr+"/", "dl.test", stream)
	for range 5 {
		c.expect(t)
	}
}

func TestUpstreamConnectionsPooled(t *testing.T) {
	bk := newBackends()
	bk.set("web", 80, serveBackend(t, named("web")))
	s, addr := startEdge(t, Config{Dial: bk.Dial})
	if err := s.SetTable(Table{Routes: []Route{{Host: "web.test", App: "web", Port: 80}}}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if status, _ := get(t, addr, "web.test", "/"); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	if n := bk.dialCount("web", 80); n != 1 {
		t.Errorf("20 sequential requests dialled %d times, want 1 (keep-alive)", n)
	}
	if _, body := get(t, addr, "web.test", "/"); !strings.HasPrefix(body, "web ") {
		t.Errorf("body %q", body)
	}
}
