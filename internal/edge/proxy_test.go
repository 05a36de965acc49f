package edge

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestRouting(t *testing.T) {
	bk := newBackends()
	for _, name := range []string{"root", "api", "apiv2", "wild", "deep", "any", "exact"} {
		bk.set(name, 8080, serveBackend(t, named(name)))
	}
	s, addr := startEdge(t, Config{Dial: bk.Dial})
	err := s.SetTable(Table{Routes: []Route{
		{Host: "example.com", App: "root", Port: 8080},
		{Host: "example.com", Path: "/api", App: "api", Port: 8080},
		{Host: "example.com", Path: "/api/v2/", App: "apiv2", Port: 8080},
		{Host: "*.example.com", App: "wild", Port: 8080},
		{Host: "*.deep.example.com", App: "deep", Port: 8080},
		{Host: "www.example.com", App: "exact", Port: 8080},
		{Host: "only.example.org", Path: "/x", App: "exact", Port: 8080},
		{Host: "*", App: "any", Port: 8080},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host, path, want string
		status           int
	}{
		{"example.com", "/", "root", 200},
		{"EXAMPLE.com:8080", "/index.html", "root", 200},
		{"example.com.", "/", "root", 200},
		{"example.com", "/api", "api", 200},
		{"example.com", "/api/users", "api", 200},
		{"example.com", "/apix", "root", 200}, // segment boundary
		{"example.com", "/api/v2/x", "apiv2", 200},
		{"example.com", "/api/v2", "apiv2", 200},
		{"example.com", "/api/v3", "api", 200},
		{"example.com", "/x/../api/y", "api", 200}, // routed as cleaned
		{"a.example.com", "/", "wild", 200},
		{"a.b.example.com", "/", "wild", 200},
		{"a.deep.example.com", "/", "deep", 200}, // longest suffix wins
		{"www.example.com", "/", "exact", 200},   // exact beats wildcard
		{"other.net", "/", "any", 200},
		{"only.example.org", "/x/y", "exact", 200},
		// A host that matches but has no route for the path is a 404,
		// not a fall through to "*".
		{"only.example.org", "/y", "", 404},
	} {
		status, body := get(t, addr, c.host, c.path)
		if status != c.status || c.status == 200 && firstWord(body) != c.want {
			t.Errorf("%s%s: got %d %q, want %d %s", c.host, c.path, status, body, c.status, c.want)
		}
		if c.status == 200 && !strings.Contains(body, " "+c.path+" ") && !strings.Contains(c.path, "..") {
			t.Errorf("%s%s: backend saw %q, want the path unchanged", c.host, c.path, body)
		}
	}
}

func TestNotFoundAndBadGateway(t *testing.T) {
	bk := newBackends()
	// A port nothing listens on: the dial is refused.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	bk.set("gone", 9000, closed)
	s, addr := startEdge(t, Config{Dial: bk.Dial})
	if err := s.SetTable(Table{Routes: []Route{
		{Host: "gone.test", App: "gone", Port: 9000},
		{Host: "none.test", App: "none", Port: 5432},
	}}); err != nil {
		t.Fatal(err)
	}
	status, body := get(t, addr, "nowhere.test", "/")
	if status != 404 || body != "404 not found: no route\n" {
		t.Errorf("no route: got %d %q", status, body)
	}
	for host, want := range map[string]string{"gone.test": "gone:9000", "none.test": "none:5432"} {
		status, body := get(t, addr, host, "/")
		if status != 502 || body != "502 bad gateway: the app did not answer\n" || strings.Contains(body, want) {
			t.Errorf("%s: got %d %q, want 502 naming nothing internal (not %s)", host, status, body, want)
		}
	}
	// The edge does not dial again: Dial has already tried every replica.
	if n := bk.dialCount("gone", 9000); n != 1 {
		t.Errorf("one request dialled %d times, want 1", n)
	}
	// An empty server (before any SetTable) answers 404 too.
	_, addr2 := startEdge(t, Config{Dial: bk.Dial})
	if status, _ := get(t, addr2, "gone.test", "/"); status != 404 {
		t.Errorf("empty table: got %d, want 404", status)
	}
}

func TestForwardedHeaders(t *testing.T) {
	bk := newBackends()
	bk.set("web", 80, serveBackend(t, named("web")))
	table := Table{Routes: []Route{{Host: "web.test", App: "web", Port: 80}}}
	s, addr := startEdge(t, Config{Dial: bk.Dial})
	if err := s.SetTable(table); err != nil {
		t.Fatal(err)
	}
	spoof := []string{"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.test", "Forwarded", "for=6.6.6.6"}
	_, body := get(t, addr, "web.test:8080", "/", spoof...)
	for _, want := range []string{"host=web.test:8080", "xff=127.0.0.1 ", "xfp=http ", "xfh=web.test:8080 "} {
		if !strings.Contains(body, want) {
			t.Errorf("untrusted client: %q lacks %q (client's headers must be replaced)", body, want)
		}
	}
	ts, taddr := startEdge(t, Config{Dial: bk.Dial, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err := ts.SetTable(table); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, taddr, "web.test", "/", spoof...)
	for _, want := range []string{"xff=6.6.6.6, 127.0.0.1 ", "xfp=https ", "xfh=evil.test "} {
		if !strings.Contains(body, want) {
			t.Errorf("trusted proxy: %q lacks %q (chain must be kept and appended to)", body, want)
		}
	}
}

// ppListener reads a PROXY header from each accepted connection and makes
// the header's source the connection's remote address, as an upstream
// that speaks the protocol does.
type ppListener struct {
	net.Listener
	t testing.TB
}

type ppConn struct {
	net.Conn
	r      *bufio.Reader
	remote net.Addr
}

func (c *ppConn) Read(b []byte) (int, error) { return c.r.Read(b) }
func (c *ppConn) RemoteAddr() net.Addr       { return c.remote }

func (l ppListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	h, err := readProxyHeader(r)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		l.t.Errorf("upstream: PROXY header: %v", err)
		c.Close()
		return l.Accept()
	}
	return &ppConn{Conn: c, r: r, remote: net.TCPAddrFromAddrPort(h.src)}, nil
}

func TestProxyProtocolToUpstream(t *testing.T) {
	for _, version := range []int{1, 2} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: named("pp"), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ppListener{Listener: l, t: t})
		t.Cleanup(func() { srv.Close() })
		bk := newBackends()
		bk.set("pp", 1, l.Addr().String())
		s, addr := startEdge(t, Config{Dial: bk.Dial})
		if err := s.SetTable(Table{Routes: []Route{{Host: "pp.test", App: "pp", Port: 1, ProxyProtocol: version}}}); err != nil {
			t.Fatal(err)
		}
		// Two clients from two connections: each is named by its own
		// address, so an upstream connection is never shared between them.
		for range 2 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			for range 2 { // twice on one client connection: the pooled upstream connection
				req, _ := http.NewRequest("GET", "http://pp.test/", nil)
				if err := req.Write(c); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), req)
				if err != nil {
					t.Fatal(err)
				}
				var sb strings.Builder
				bufio.NewReader(resp.Body).WriteTo(&sb)
				resp.Body.Close()
				if want := "remote=" + c.LocalAddr().String(); !strings.HasSuffix(sb.String(), want) {
					t.Errorf("v%d: upstream saw %q, want %s", version, sb.String(), want)
				}
			}
			c.Close()
		}
	}
}

func TestUpstreamHostRoundTrip(t *testing.T) {
	src := netip.MustParseAddrPort("[2001:db8::1]:40000")
	dst := netip.MustParseAddrPort("10.0.0.1:443")
	for _, pp := range []int{0, 1, 2} {
		h := upstreamHost("web-1", 8080, pp, src, dst)
		u, err := parseUpstreamHost(h + ":80")
		if err != nil {
			t.Fatal(err)
		}
		want := upstream{app: "web-1", port: 8080}
		if pp != 0 {
			want.pp, want.src, want.dst = pp, src, dst
		}
		if u != want {
			t.Errorf("pp %d: %q gave %+v, want %+v", pp, h, u, want)
		}
	}
}
