// Package edge is the HTTP(S) reverse proxy of edge nodes: the public's
// way in. It routes by host and path prefix to (app, port) and reaches the
// app through a Dial function it is given (the node daemon passes its link
// machinery, which picks a ready replica and retries another), so the
// proxy knows nothing of replicas, nodes or SSH.
//
// The routing table is one immutable value behind an atomic pointer:
// SetTable swaps it, and nothing else. A request matched its route when
// it arrived and keeps that route's upstream connection for its life, so
// a WebSocket or server-sent event stream survives any later change,
// to its own route or another (Caddy reloads drop WebSockets on unrelated
// routes: caddy#5471). Upstream connections are pooled per app:port,
// under a synthetic host name per pool. Most requests take the lean path
// (forward.go): written and answered in the handler's own goroutine on a
// pooled connection, with no goroutine hand-offs; upgrades (WebSockets),
// request bodies of unknown length or over 64 KiB, and the odd rest go
// through httputil.ReverseProxy and net/http's Transport. A request that
// failed on a connection that says its bytes never arrived (Undeliverable)
// is sent again on a new one, if its body was kept (replay.go).
//
// TLS certificates come from PEM files (re-read on every SetTable) or
// from ACME through golang.org/x/crypto/acme/autocert (HTTP-01 on the
// plain listener, TLS-ALPN-01 on the TLS one), stored in an encrypted
// cache (Cache) so a copy of the disk does not give away private keys.
package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// Dialer opens a connection to a ready replica of app's port.
type Dialer func(ctx context.Context, app string, port int) (net.Conn, error)

// Config is what a Server needs; Dial is required.
type Config struct {
	Dial Dialer
	// DialTimeout bounds Dial; default 10 s.
	DialTimeout time.Duration
	// TrustedProxies are client addresses whose X-Forwarded-* headers are
	// kept (For appended to). Default none: the edge replaces them, since
	// anything else lets any client claim any address.
	TrustedProxies []netip.Prefix
	// H2C lets the plain listener speak HTTP/2 without TLS (prior
	// knowledge). Off by default: browsers never use it.
	H2C bool
	// ACME, when set, obtains certificates for TLSHost entries marked ACME.
	ACME   *ACME
	Logger *slog.Logger
}

// Server is the edge proxy. Serve and ServeTLS run its listeners;
// SetTable changes what it routes.
type Server struct {
	dial           Dialer
	dialTimeout    time.Duration
	trustedProxies []netip.Prefix
	h2c            bool
	log            *slog.Logger
	proxyLog       *log.Logger

	table atomic.Pointer[table]
	// transport pools upstream connections; CloseIdleUpstreams replaces it.
	transport atomic.Pointer[http.Transport]
	// pool holds the lean path's upstream connections (forward.go);
	// CloseIdleUpstreams replaces it with the transport.
	pool atomic.Pointer[connPool]
	// noLean sends every request through ReverseProxy (benchmarks
	// compare the two paths).
	noLean   bool
	acme     *autocert.Manager
	acmeHTTP http.Handler // the Manager's HTTP-01 answerer
	// acmeExpiry is the NotAfter of each ACME host's certificate as
	// autocert last handed it over (certexpiry.go): canonical host →
	// time.Time.
	acmeExpiry sync.Map

	// ctx is every request's base context; cancelled when the Server
	// stops, it ends upgraded connections (WebSockets), which
	// http.Server no longer tracks once hijacked.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	servers []*http.Server
	stats   map[string]*hostStats // per route host (stats.go)
}

// New builds a Server with an empty table: every request is a 404 until
// SetTable.
func New(cfg Config) (*Server, error) {
	if cfg.Dial == nil {
		return nil, errors.New("edge: Config.Dial is required")
	}
	s := &Server{
		dial:           cfg.Dial,
		dialTimeout:    cfg.DialTimeout,
		trustedProxies: cfg.TrustedProxies,
		h2c:            cfg.H2C,
		log:            cfg.Logger,
	}
	if s.dialTimeout == 0 {
		s.dialTimeout = 10 * time.Second
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// ReverseProxy's own complaints (a client gone mid-copy) are debug.
	s.proxyLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	s.transport.Store(s.newTransport())
	s.pool.Store(newConnPool())
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.table.Store(&table{hosts: map[string]*hostEntry{}})
	if cfg.ACME != nil {
		m, err := cfg.ACME.manager(s)
		if err != nil {
			return nil, err
		}
		s.acme = m
		s.acmeHTTP = m.HTTPHandler(http.HandlerFunc(s.serveHTTP))
	}
	return s, nil
}

// SetTable validates t, loads its certificate files and swaps it in. On
// any error the old table stays: a bad certificate file must not take
// every route down. Open connections are not touched.
func (s *Server) SetTable(t Table) error {
	c, err := compile(t)
	if err != nil {
		return fmt.Errorf("edge: set table: %w", err)
	}
	for _, e := range c.hosts {
		if e.acme && s.acme == nil {
			return errors.New("edge: set table: a host wants ACME but the server has no ACME configuration")
		}
		for _, r := range e.routes {
			r.proxy = s.newProxy(r)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[string]bool{}
	for _, e := range c.hosts {
		for _, r := range e.routes {
			r.stats = s.statsFor(r.Host)
			keep[r.Host] = true
		}
	}
	for h := range s.stats {
		if !keep[h] {
			delete(s.stats, h)
		}
	}
	s.table.Store(c)
	return nil
}

// CloseIdleUpstreams retires every pooled upstream connection, so the
// next requests dial afresh through Dial: call it when an app's replicas
// change. Idle connections are closed now; those carrying a request finish
// it and are then closed, not reused, so no new request goes to a replica
// that left (a busy connection put back in a shared pool would be, and
// under load stays busy: a POST sent on it as that replica stops is lost).
// Requests in flight and open streams are not touched.
func (s *Server) CloseIdleUpstreams() {
	// The old Transport gets no request again, so its closeIdle stays set
	// and it closes each connection as it comes back.
	s.transport.Swap(s.newTransport()).CloseIdleConnections()
	s.pool.Swap(newConnPool()).retire()
}

// Handler routes and proxies a request; Serve and ServeTLS use it.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rt := s.table.Load().match(r.Host, r.URL.Path)
	if rt == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "404 not found: no route\n")
		return
	}
	start := time.Now()
	if !s.noLean && lean(r) {
		s.forward(w, r, rt, start)
		return
	}
	rt.proxy.ServeHTTP(&countingWriter{ResponseWriter: w, stats: rt.stats, start: start}, r)
}

// plainHandler serves the plain listener (port 80): ACME HTTP-01
// challenges, a redirect to https for hosts that have TLS, and the proxy
// for the rest.
func (s *Server) plainHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := s.table.Load()
		e := t.tls(r.Host)
		switch {
		case e != nil && e.acme && strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/"):
			s.acmeHTTP.ServeHTTP(w, r)
		case e != nil:
			// 308 keeps the method and body, unlike 301/302.
			http.Redirect(w, r, "https://"+canonicalHost(r.Host)+r.URL.RequestURI(), http.StatusPermanentRedirect)
		default:
			s.serveHTTP(w, r)
		}
	})
}

func (s *Server) newHTTPServer(h http.Handler, h2c bool) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(h2c)
	srv := &http.Server{
		Handler:   h,
		Protocols: p,
		// Slow headers are an attack; slow bodies and long streams are
		// normal, so only the header read has a deadline.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          s.proxyLog,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	return srv
}

// Serve answers plain HTTP on l (port 80 in production) until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.newHTTPServer(s.plainHandler(), s.h2c).Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeTLS answers HTTPS on l (port 443 in production), HTTP/2 or
// HTTP/1.1 by ALPN, until Shutdown.
func (s *Server) ServeTLS(l net.Listener) error {
	srv := s.newHTTPServer(s.Handler(), false)
	srv.TLSConfig = s.TLSConfig()
	err := srv.ServeTLS(l, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the listeners and waits for requests to finish, up to
// ctx; then it ends whatever is left: event streams that never finish,
// and upgraded connections (WebSockets), which http.Server does not wait
// for. It returns ctx's error if it had to cut anything but those.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range s.listServers() {
		errs = append(errs, srv.Shutdown(ctx))
	}
	return errors.Join(append(errs, s.Close())...)
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.cancel()
	var errs []error
	for _, srv := range s.listServers() {
		errs = append(errs, srv.Close())
	}
	s.transport.Load().CloseIdleConnections()
	s.pool.Load().retire()
	return errors.Join(errs...)
}

func (s *Server) listServers() []*http.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.servers)
}
