package edge

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Route sends requests for Host whose path lies under Path to an app's port.
type Route struct {
	// Host is an exact name (example.com), a wildcard (*.example.com: any
	// name below example.com, at any depth), or "*" for any host.
	Host string
	// Path is a prefix on segment boundaries: /api matches /api and
	// /api/x, not /apix. Empty means "/"; a trailing slash is dropped.
	Path string
	App  string
	Port int
	// Name is how logs name the app; default App (which may be an alias
	// the caller's Dial understands).
	Name string
	// ProxyProtocol, 1 or 2, starts each upstream connection with a PROXY
	// protocol header of that version carrying the client's address; 0
	// sends none. Such connections are pooled per client connection,
	// since the header speaks for one client.
	ProxyProtocol int
}

// TLSHost says where the certificate for Host comes from: PEM files
// (read again on every SetTable), PEM in memory, or ACME.
type TLSHost struct {
	// Host is exact or a wildcard, matched like Route.Host ("*" is not
	// allowed: a certificate is for names).
	Host     string
	CertFile string
	KeyFile  string
	// CertPEM and KeyPEM are the certificate chain and its key, for a
	// caller that must not write the key to disk.
	CertPEM []byte
	KeyPEM  []byte
	// ACME obtains and renews the certificate from the Server's ACME CA.
	// Only exact names: a wildcard would need DNS-01, and would let any
	// client make the edge ask the CA for names at will.
	ACME bool
}

// Table is the edge's whole configuration, replaced as one by SetTable.
type Table struct {
	Routes []Route
	TLS    []TLSHost
}

var (
	appRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	labelRE = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)
)

// table is a Table compiled for lookups; it is never changed once built,
// so requests read it without locks.
type table struct {
	hosts map[string]*hostEntry // key: exact name, "*.suffix", or "*"
}

// hostEntry holds what one host pattern has: routes by path, longest
// first, and its certificate source.
type hostEntry struct {
	routes []*route
	cert   *tls.Certificate // from files
	// notAfter is cert's leaf's expiry, parsed once when loaded.
	notAfter time.Time
	acme     bool
	hasTLS   bool
}

func compile(t Table) (*table, error) {
	c := &table{hosts: map[string]*hostEntry{}}
	entry := func(h string) *hostEntry {
		e := c.hosts[h]
		if e == nil {
			e = &hostEntry{}
			c.hosts[h] = e
		}
		return e
	}
	seen := map[string]int{}
	for i, r := range t.Routes {
		if err := checkRoute(&r); err != nil {
			return nil, fmt.Errorf("route %d: %w", i, err)
		}
		k := r.Host + " " + r.Path
		if j, dup := seen[k]; dup {
			return nil, fmt.Errorf("route %d: host %q path %q is also route %d", i, r.Host, r.Path, j)
		}
		seen[k] = i
		e := entry(r.Host)
		e.routes = append(e.routes, newRoute(r))
	}
	for _, e := range c.hosts {
		slices.SortFunc(e.routes, func(a, b *route) int { return cmp.Compare(len(b.Path), len(a.Path)) })
	}
	for i, h := range t.TLS {
		if err := addTLS(entry, h); err != nil {
			return nil, fmt.Errorf("tls %d (%s): %w", i, h.Host, err)
		}
	}
	return c, nil
}

func checkRoute(r *Route) error {
	if err := checkHost(r.Host, true); err != nil {
		return err
	}
	r.Host = strings.ToLower(r.Host)
	if r.Path == "" {
		r.Path = "/"
	}
	// A trailing slash is allowed and dropped (/api/ is /api: prefixes
	// end on segment boundaries anyway); nothing else unclean is.
	if !strings.HasPrefix(r.Path, "/") || r.Path != "/" && path.Clean(r.Path) != strings.TrimSuffix(r.Path, "/") {
		return fmt.Errorf("path %q: want a clean absolute path", r.Path)
	}
	r.Path = path.Clean(r.Path)
	if !appRE.MatchString(r.App) {
		return fmt.Errorf("app %q: want a lowercase name", r.App)
	}
	if r.Port < 1 || r.Port > 65535 {
		return fmt.Errorf("port %d: want 1-65535", r.Port)
	}
	if r.ProxyProtocol < 0 || r.ProxyProtocol > 2 {
		return fmt.Errorf("proxy protocol %d: want 0, 1 or 2", r.ProxyProtocol)
	}
	return nil
}

// checkHost accepts DNS names (any case), "*.name", and "*" when
// allowAny.
func checkHost(h string, allowAny bool) error {
	if h == "*" && allowAny {
		return nil
	}
	name := strings.ToLower(strings.TrimPrefix(h, "*."))
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("host %q: want a DNS name", h)
	}
	for _, l := range strings.Split(name, ".") {
		if !labelRE.MatchString(l) {
			return fmt.Errorf("host %q: label %q is not a DNS label", h, l)
		}
	}
	return nil
}

func addTLS(entry func(string) *hostEntry, h TLSHost) error {
	if err := checkHost(h.Host, false); err != nil {
		return err
	}
	e := entry(strings.ToLower(h.Host))
	if e.hasTLS {
		return fmt.Errorf("listed twice")
	}
	e.hasTLS = true
	files := h.CertFile != "" || h.KeyFile != ""
	inMemory := h.CertPEM != nil || h.KeyPEM != nil
	switch {
	case h.ACME && (files || inMemory):
		return fmt.Errorf("both ACME and a certificate: choose one")
	case files && inMemory:
		return fmt.Errorf("both certificate files and PEM: choose one")
	case inMemory:
		cert, err := tls.X509KeyPair(h.CertPEM, h.KeyPEM)
		if err != nil {
			return fmt.Errorf("certificate: %w", err)
		}
		e.cert, e.notAfter = &cert, leafNotAfter(&cert)
	case h.ACME && strings.HasPrefix(h.Host, "*"):
		return fmt.Errorf("ACME for a wildcard needs DNS-01, which the edge does not do: list the names")
	case h.ACME:
		e.acme = true
	case h.CertFile == "" || h.KeyFile == "":
		return fmt.Errorf("want CertFile and KeyFile, CertPEM and KeyPEM, or ACME")
	default:
		cert, err := tls.LoadX509KeyPair(h.CertFile, h.KeyFile)
		if err != nil {
			return fmt.Errorf("load certificate: %w", err)
		}
		e.cert, e.notAfter = &cert, leafNotAfter(&cert)
	}
	return nil
}

// canonicalHost lowercases a Host header or SNI name and drops its port
// and trailing dot.
func canonicalHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(h, "]"), "["), ".")
	return strings.ToLower(h)
}

// host returns the most specific pattern's entry for a canonical
// name: the exact name, then wildcards from the longest suffix, then "*".
// want filters entries (only those with routes, only those with TLS).
func (t *table) host(name string, want func(*hostEntry) bool) *hostEntry {
	if e := t.hosts[name]; e != nil && want(e) {
		return e
	}
	for rest := name; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		if e := t.hosts["*."+rest]; e != nil && want(e) {
			return e
		}
	}
	if e := t.hosts["*"]; e != nil && want(e) {
		return e
	}
	return nil
}

func hasRoutes(e *hostEntry) bool { return len(e.routes) > 0 }
func hasTLS(e *hostEntry) bool    { return e.hasTLS }

// match finds the route for a request: the most specific host pattern
// that has routes, then within it the longest path prefix. A host that
// matches but has no route for the path gives nil (404), rather than
// falling through to a less specific host.
func (t *table) match(host, p string) *route {
	e := t.host(canonicalHost(host), hasRoutes)
	if e == nil {
		return nil
	}
	// Match on the cleaned path, so /a/../b is routed as /b, where the
	// backend will take it.
	if p == "" {
		p = "/"
	}
	clean := path.Clean(p)
	for _, r := range e.routes {
		if pathUnder(clean, r.Path) {
			return r
		}
	}
	return nil
}

func pathUnder(p, prefix string) bool {
	if prefix == "/" {
		return true
	}
	return p == prefix || strings.HasPrefix(p, prefix) && p[len(prefix)] == '/'
}

// tls returns the certificate source for an SNI name, or nil.
func (t *table) tls(name string) *hostEntry {
	return t.host(canonicalHost(name), hasTLS)
}
