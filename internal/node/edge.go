package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatcloud/moat/internal/edge"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// The edge: on a node whose operator made it one (node.conf edge=true,
// never the master's say), the daemon runs the HTTP(S) proxy of package
// edge on EdgeHTTP and EdgeHTTPS in the node's own network namespace (the
// daemon's), routing what the link table's Ingress says through the links
// EdgeSource → app:port, which have no listener. On any other node the
// table's Ingress is ignored.

// edgeRetry is how long a listener that could not open (the port taken)
// waits before the next try.
const edgeRetry = 2 * time.Second

// edgeShutdownGrace bounds how long a stopping daemon waits for requests
// through the edge to finish.
const edgeShutdownGrace = 5 * time.Second

type edgeProxy struct {
	log   *slog.Logger
	links *links
	srv   *edge.Server

	// aliases maps the names the proxy knows apps by to link IDs, swapped
	// whole with each table. App keys of tenants hold a '.', which the
	// proxy's upstream host names cannot carry, so every app is known to
	// it by a hash of its link: stable across tables (pooled connections
	// stay useful) and impossible to forge by naming an app.
	aliases atomic.Pointer[map[string]string]

	mu        sync.Mutex                        // one apply at a time
	endpoints map[string][]nodeapi.LinkEndpoint // edge links' endpoints last applied
	certs     edgeCerts                         // certificates held as secrets (edge_certs.go)

	cache  *edge.Cache  // ACME's, shared with the other edges (edge_cache.go)
	outbox *edge.Outbox // its changes, for the master to carry
}

// edgeAlias is the proxy's name for the app reached through link id.
func edgeAlias(id string) string {
	h := sha256.Sum256([]byte(id))
	return "e" + hex.EncodeToString(h[:10])
}

// edgeACME is the proxy's ACME configuration: the certificates' cache
// under the node's state directory, sealed with a key kept beside it
// (made on first start, 0600).
func edgeACME(cfg Config) (*edge.ACME, error) {
	dir := filepath.Join(cfg.Root, "edge")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := cacheKey(filepath.Join(dir, "acme.key"))
	if err != nil {
		return nil, err
	}
	a := &edge.ACME{DirectoryURL: cfg.ACMEDirectory, Email: cfg.ACMEEmail, CacheDir: filepath.Join(dir, "acme"), CacheKey: key}
	if cfg.ACMECAFile != "" {
		pem, err := os.ReadFile(cfg.ACMECAFile)
		if err != nil {
			return nil, fmt.Errorf("acme-ca-file: %w", err)
		}
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme-ca-file %s: no PEM certificate", cfg.ACMECAFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		a.HTTPClient = &http.Client{Transport: tr, Timeout: time.Minute}
	}
	return a, nil
}

// cacheKey reads the 32-byte key at path, making it first if there is
// none: written whole to a temporary file, synced, then linked in place,
// which fails if a key is there already. So a crash leaves no empty or
// partial key (which would keep the edge from starting), and of two
// daemons starting at once one makes the key and the other reads it.
func cacheKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.CreateTemp(filepath.Dir(path), ".acme.key-*")
		if err != nil {
			return nil, fmt.Errorf("edge cache key: %w", err)
		}
		defer os.Remove(f.Name())
		_, werr := f.Write(key)
		if err := errors.Join(werr, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
			return nil, fmt.Errorf("edge cache key: %w", err)
		}
		if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
			return cacheKey(path) // another made it first
		} else if err != nil {
			return nil, fmt.Errorf("edge cache key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("edge cache key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("edge cache key %s: %d bytes, want 32", path, len(key))
	}
	return key, nil
}

func newEdgeProxy(cfg Config, log *slog.Logger, l *links) (*edgeProxy, error) {
	p := &edgeProxy{log: log.With("part", "edge"), links: l}
	p.certs = edgeCerts{keyFile: cfg.SecretsKey, log: p.log, opened: map[[32]byte]certPEM{}, failed: map[[32]byte]bool{}}
	p.aliases.Store(&map[string]string{})
	a, err := edgeACME(cfg)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	if p.cache, p.outbox, err = newEdgeCache(a, p.log); err != nil {
		return nil, err
	}
	p.srv, err = edge.New(edge.Config{Dial: p.dial, ACME: a, Logger: p.log})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// dial reaches a ready replica through the edge link, as a link listener
// does: the connection counts for its endpoint until it is closed, and is
// cut if the link leaves the table.
func (p *edgeProxy) dial(ctx context.Context, alias string, _ int) (net.Conn, error) {
	id, ok := (*p.aliases.Load())[alias]
	if !ok {
		return nil, fmt.Errorf("no edge link for %s", alias)
	}
	conn, release, err := p.links.connect(ctx, id)
	if err != nil {
		return nil, err
	}
	// The links hold the bare connection, and close it if the link
	// goes (under their lock: the wrapper's Close, which takes it, would
	// deadlock); the proxy then sees it fail and closes the wrapper.
	if !p.links.hold(id, conn) {
		conn.Close()
		release()
		return nil, fmt.Errorf("link %s is gone", id)
	}
	return &edgeConn{Conn: conn, links: p.links, link: id, release: release, mark: newRequestMark(conn)}, nil
}

// edgeConn is an upstream connection of the proxy; closing it ends its
// hold and its count on the endpoint, once. It follows its requests, to
// say whether the last one surely never arrived (link_delivery.go).
type edgeConn struct {
	net.Conn
	links   *links
	link    string
	release func()
	once    sync.Once
	mark    *requestMark
}

func (c *edgeConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.links.unhold(c.link, c.Conn)
		c.release()
	})
	return err
}

// apply routes what the links' current table's Ingress says (read here,
// under mu, so that of two tables set at once the later wins). When the
// endpoints of an edge link changed, pooled idle upstream connections are
// dropped, so the next requests go through the new endpoints (requests
// under way finish where they are).
func (p *edgeProxy) apply() {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.links.linkTable()
	usedCerts := map[[32]byte]bool{}
	table, aliases := p.table(t.Ingress, usedCerts)
	p.certs.forget(usedCerts)
	endpoints := map[string][]nodeapi.LinkEndpoint{}
	for _, l := range t.Links {
		if l.Source == nodeapi.EdgeSource {
			endpoints[l.ID] = l.Endpoints
		}
	}
	// The aliases grow before the table and shrink after, so a request
	// matched on either table finds its link.
	old := *p.aliases.Load()
	both := map[string]string{}
	for k, v := range old {
		both[k] = v
	}
	for k, v := range aliases {
		both[k] = v
	}
	p.aliases.Store(&both)
	if err := p.srv.SetTable(table); err != nil {
		p.log.Error("ingress routes refused; the previous ones stay", "err", err)
		p.aliases.Store(&old)
		return
	}
	p.aliases.Store(&aliases)
	changed := !sameEndpoints(p.endpoints, endpoints)
	p.endpoints = endpoints
	if changed {
		p.srv.CloseIdleUpstreams()
	}
}

// table is what the proxy routes for ingress: each route under its app's
// alias, and each host's certificate source (the first route of a host
// with TLS says it). A host meant for TLS whose certificate cannot be used
// is not served at all (404) rather than in plain HTTP, where its cookies
// and passwords would travel in clear; tlsHost logged why. used collects
// the certificates in use.
func (p *edgeProxy) table(ingress []nodeapi.IngressRoute, used map[[32]byte]bool) (edge.Table, map[string]string) {
	aliases := map[string]string{}
	broken := map[string]bool{}
	var table edge.Table
	for _, r := range ingress {
		a := edgeAlias(r.Link)
		aliases[a] = r.Link
		table.Routes = append(table.Routes, edge.Route{Host: r.Host, Path: r.Path, App: a, Port: r.Port, Name: r.App, ProxyProtocol: r.ProxyProtocol})
		if slices.ContainsFunc(table.TLS, func(h edge.TLSHost) bool { return h.Host == r.Host }) {
			continue // a host's first route with TLS says where its certificate comes from
		}
		switch {
		case r.ACME:
			table.TLS = append(table.TLS, edge.TLSHost{Host: r.Host, ACME: true})
		case r.Cert != nil:
			if h, ok := p.certs.tlsHost(r, used); ok {
				table.TLS = append(table.TLS, h)
			} else {
				broken[r.Host] = true
			}
		}
	}
	table.Routes = slices.DeleteFunc(table.Routes, func(r edge.Route) bool { return broken[r.Host] })
	return table, aliases
}

func sameEndpoints(a, b map[string][]nodeapi.LinkEndpoint) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(e nodeapi.LinkEndpoint) string { return endpointKey(e) + "@" + e.Addr }
	for id, ea := range a {
		eb, ok := b[id]
		if !ok || len(ea) != len(eb) {
			return false
		}
		ka, kb := make([]string, len(ea)), make([]string, len(eb))
		for i := range ea {
			ka[i], kb[i] = key(ea[i]), key(eb[i])
		}
		slices.Sort(ka)
		slices.Sort(kb)
		if !slices.Equal(ka, kb) {
			return false
		}
	}
	return true
}

// run serves plain HTTP on httpAddr and HTTPS on httpsAddr until ctx
// ends; a listener that cannot open (its port taken) is tried again.
func (p *edgeProxy) run(ctx context.Context, httpAddr, httpsAddr string) {
	var wg sync.WaitGroup
	for _, l := range []struct {
		addr  string
		serve func(net.Listener) error
	}{{httpAddr, p.srv.Serve}, {httpsAddr, p.srv.ServeTLS}} {
		if l.addr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.listen(ctx, l.addr, l.serve)
		}()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), edgeShutdownGrace)
	defer cancel()
	if err := p.srv.Shutdown(sctx); err != nil {
		p.log.Debug("edge shut down", "err", err)
	}
	wg.Wait()
}

func (p *edgeProxy) listen(ctx context.Context, addr string, serve func(net.Listener) error) {
	failing := ""
	for ctx.Err() == nil {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			if err.Error() != failing {
				failing = err.Error()
				p.log.Error("edge listener not open; trying again", "addr", addr, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(edgeRetry):
			}
			continue
		}
		if ctx.Err() != nil {
			ln.Close()
			return
		}
		p.log.Info("edge listening", "addr", ln.Addr().String())
		if err := serve(ln); err != nil && ctx.Err() == nil {
			p.log.Error("edge listener failed", "addr", addr, "err", err)
			continue
		}
		return
	}
}

// linkTable is the table the links serve now.
func (m *links) linkTable() nodeapi.LinkTable {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.table
}

// applyIngress hands the table the links serve to the edge, or, on a node
// that is not one, says once that its ingress is ignored.
func (d *Daemon) applyIngress() {
	if d.edge != nil {
		d.edge.apply()
		return
	}
	if t := d.links.linkTable(); len(t.Ingress) > 0 && d.ingressIgnored.CompareAndSwap(false, true) {
		d.log.Warn("the link table has ingress routes, but this node is not an edge (node.conf edge=true, set by its operator): they are ignored", "routes", len(t.Ingress))
	}
}
