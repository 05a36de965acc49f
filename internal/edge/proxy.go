package edge

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// route is a compiled Route. Its proxy is built once per SetTable; a
// request keeps the route it matched, so a stream opened before a swap
// carries on with the upstream it has.
type route struct {
	Route
	proxy *httputil.ReverseProxy
	host  string     // the upstream host, for routes without PROXY headers
	stats *hostStats // its host's counters (stats.go)
}

// upstreamSuffix ends every synthetic upstream host. The Transport pools
// connections by host, so one synthetic host is one pool: per app:port,
// and for PROXY protocol routes per client connection as well.
const upstreamSuffix = ".edge.invalid"

// upstreamHost names the pool of connections to app:port. For routes that
// send a PROXY header, it also carries the client connection's addresses
// (hex of netip.AddrPort's binary form), so a connection is reused only
// for the client it was opened for, and the dialer reads the addresses
// back from the host it is asked to dial.
func upstreamHost(app string, port, pp int, src, dst netip.AddrPort) string {
	h := app + "." + strconv.Itoa(port)
	if pp != 0 {
		s, _ := src.MarshalBinary()
		d, _ := dst.MarshalBinary()
		h += ".pp" + strconv.Itoa(pp) + "." + hex.EncodeToString(s) + "." + hex.EncodeToString(d)
	}
	return h + upstreamSuffix
}

// upstream is what the dialer needs to know, read back from the host.
type upstream struct {
	app      string
	port     int
	pp       int
	src, dst netip.AddrPort
}

func parseUpstreamHost(addr string) (upstream, error) {
	var u upstream
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	f := strings.Split(strings.TrimSuffix(host, upstreamSuffix), ".")
	if !strings.HasSuffix(host, upstreamSuffix) || (len(f) != 2 && len(f) != 5) {
		return u, fmt.Errorf("not an upstream host: %q", addr)
	}
	u.app = f[0]
	if u.port, err = strconv.Atoi(f[1]); err != nil {
		return u, fmt.Errorf("upstream host %q: port: %w", addr, err)
	}
	if len(f) == 5 {
		u.pp, err = strconv.Atoi(strings.TrimPrefix(f[2], "pp"))
		if err == nil {
			u.src, err = addrPortFromHex(f[3])
		}
		if err == nil {
			u.dst, err = addrPortFromHex(f[4])
		}
		if err != nil {
			return u, fmt.Errorf("upstream host %q: %w", addr, err)
		}
	}
	return u, nil
}

func addrPortFromHex(s string) (netip.AddrPort, error) {
	var ap netip.AddrPort
	b, err := hex.DecodeString(s)
	if err == nil {
		err = ap.UnmarshalBinary(b)
	}
	return ap, err
}

// dialUpstream is the Transport's DialContext: it maps a synthetic host
// back to (app, port), dials through the injected Dial (which balances
// over replicas and retries another one), and writes the PROXY header.
func (s *Server) dialUpstream(ctx context.Context, _, addr string) (net.Conn, error) {
	u, err := parseUpstreamHost(addr)
	if err != nil {
		return nil, err
	}
	// The Transport's dial context is not cancelled with the request (the
	// connection may serve the next one), so bound it here.
	ctx, cancel := context.WithTimeout(ctx, s.dialTimeout)
	defer cancel()
	conn, err := s.dial(ctx, u.app, u.port)
	if err != nil {
		return nil, &dialError{app: u.app, port: u.port, err: err}
	}
	if u.pp == 0 {
		return conn, nil
	}
	hdr := appendProxyHeader(nil, u.pp, u.src, u.dst)
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	if _, err := conn.Write(hdr); err != nil {
		conn.Close()
		return nil, &dialError{app: u.app, port: u.port, err: fmt.Errorf("write PROXY header: %w", err)}
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// dialError marks a failure before anything of the request was sent.
type dialError struct {
	app  string
	port int
	err  error
}

func (e *dialError) Error() string {
	return fmt.Sprintf("dial %s:%d: %v", e.app, e.port, e.err)
}
func (e *dialError) Unwrap() error { return e.err }

func (s *Server) newTransport() *http.Transport {
	return &http.Transport{
		DialContext: s.dialUpstream,
		// Streams and long polls have no deadline; the client's own
		// disconnect ends them.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		// The edge forwards the client's Accept-Encoding as is; it must
		// not ask for gzip itself and decompress on the client's behalf.
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
	}
}

// newRoute builds a route's reverse proxy over the Server-wide Transport
// (set by SetTable through newProxy).
func newRoute(r Route) *route {
	return &route{Route: r, host: upstreamHost(r.App, r.Port, 0, netip.AddrPort{}, netip.AddrPort{}), stats: &hostStats{}}
}

func (s *Server) newProxy(r *route) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { s.rewrite(pr, r) },
		Transport: roundTripper{s},
		// Server-sent events and bodies of unknown length (streams) are
		// flushed after every write whatever this says: ReverseProxy
		// gives them -1. Zero here leaves bodies of known length to the
		// server's buffer: -1 for them too would flush the headers
		// separately, from a timer, costing a write and a goroutine per
		// request (about a fifth of the edge's throughput, measured
		// with BenchmarkEdge).
		FlushInterval: 0,
		ErrorHandler:  func(w http.ResponseWriter, req *http.Request, err error) { s.upstreamError(w, req, r, err) },
		// Without a pool ReverseProxy allocates 32 KiB per response.
		BufferPool: copyBuffers,
		ErrorLog:   s.proxyLog,
	}
}

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// getp and putp lend a buffer without the allocation Put makes (the lean
// path's copy, once per request).
func (b *bufferPool) getp() *[]byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return v
	}
	buf := make([]byte, 32<<10)
	return &buf
}

func (b *bufferPool) putp(buf *[]byte) { b.p.Put(buf) }

var copyBuffers = &bufferPool{}

// rewrite points the outgoing request at the route's pool. The Host
// header stays the client's: apps see the name they were reached by.
func (s *Server) rewrite(pr *httputil.ProxyRequest, r *route) {
	var src, dst netip.AddrPort
	if r.ProxyProtocol != 0 {
		src, dst = clientAddrs(pr.In)
	}
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = r.host
	if r.ProxyProtocol != 0 {
		pr.Out.URL.Host = upstreamHost(r.App, r.Port, r.ProxyProtocol, src, dst)
	}
	s.setForwarded(pr)
}

// clientAddrs is the client connection's remote and local address.
func clientAddrs(req *http.Request) (src, dst netip.AddrPort) {
	src, _ = netip.ParseAddrPort(req.RemoteAddr)
	if la, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		dst, _ = netip.ParseAddrPort(la.String())
	}
	return src, dst
}

// setForwarded sets X-Forwarded-For/Proto/Host. ReverseProxy has removed
// the client's own; they are kept (and For appended to) only when the
// client is a configured trusted proxy.
func (s *Server) setForwarded(pr *httputil.ProxyRequest) {
	in := pr.In.Header
	if s.trusted(pr.In.RemoteAddr) {
		if v := in["X-Forwarded-For"]; len(v) > 0 {
			pr.Out.Header["X-Forwarded-For"] = v
		}
		pr.SetXForwarded()
		for _, h := range []string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
			if v := in.Get(h); v != "" {
				pr.Out.Header.Set(h, v)
			}
		}
		return
	}
	pr.SetXForwarded()
}

func (s *Server) trusted(remote string) bool {
	if len(s.trustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range s.trustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// upstreamError answers when the upstream could not be used: 502, naming
// nothing internal (the public need not learn the cluster's app names; the
// log names the route's app and port). A client that went away gets
// nothing (there is no one to answer).
func (s *Server) upstreamError(w http.ResponseWriter, req *http.Request, r *route, err error) {
	if errors.Is(err, context.Canceled) && req.Context().Err() != nil {
		return
	}
	s.log.Warn("upstream failed", "app", cmp.Or(r.Name, r.App), "port", r.Port, "host", req.Host, "err", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusBadGateway)
	fmt.Fprint(w, "502 bad gateway: the app did not answer\n")
}
