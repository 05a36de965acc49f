package edge

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
)

// backends maps "app:port" to a loopback address, standing in for the
// node daemon's link machinery: tests swap entries to move an app to other
// replicas.
type backends struct {
	mu    sync.Mutex
	addrs map[string]string
	dials map[string]int
}

func newBackends() *backends {
	return &backends{addrs: map[string]string{}, dials: map[string]int{}}
}

func (b *backends) set(app string, port int, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addrs[fmt.Sprintf("%s:%d", app, port)] = addr
}

func (b *backends) dialCount(app string, port int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dials[fmt.Sprintf("%s:%d", app, port)]
}

func (b *backends) Dial(ctx context.Context, app string, port int) (net.Conn, error) {
	k := fmt.Sprintf("%s:%d", app, port)
	b.mu.Lock()
	addr, ok := b.addrs[k]
	b.dials[k]++
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no ready replica of %s", k)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// serveBackend runs h on a loopback listener until the test ends, and
// returns its address.
func serveBackend(t testing.TB, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// named answers with its name, the path and the headers the tests look at.
func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s host=%s xff=%s xfp=%s xfh=%s remote=%s",
			name, r.URL.Path, r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"),
			r.Header.Get("X-Forwarded-Host"), r.RemoteAddr)
	})
}

// startEdge runs a Server's plain listener on loopback and returns it with
// its address.
func startEdge(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return s, l.Addr().String()
}

// client is an HTTP client with a deadline, so a bug fails a test rather
// than hanging it.
func client() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get sends a GET for host and path to the edge at addr, and returns the
// status and body.
func get(t testing.TB, addr, host, path string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client().Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: read: %v", host, path, err)
	}
	return resp.StatusCode, string(body)
}

// firstWord is the backend's name in a named answer.
func firstWord(s string) string { w, _, _ := strings.Cut(s, " "); return w }

// rawApp is an upstream that speaks HTTP/1.1 by hand: each connection
// runs script with the connection's number (from 1), the connection and
// its reader. It counts connections.
func rawApp(t *testing.T, script func(n int32, c net.Conn, br *bufio.Reader)) (addr string, conns *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int32)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n := conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				script(n, c, bufio.NewReader(c))
			}()
		}
	}()
	return l.Addr().String(), conns
}
