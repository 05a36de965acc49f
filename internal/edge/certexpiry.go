package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"time"
)

// Certificate expiry, for the node's metrics (RouteStats.CertNotAfter):
// the NotAfter of the certificate the edge would serve a host now, read
// without a handshake. A certificate from files or PEM has its expiry
// parsed once when the table is compiled; an ACME host's is kept as
// autocert hands certificates over: the one a handshake was served, and
// every certificate entry autocert reads from or writes to the cache (it
// reads one when it loads a host's certificate or finds one renewed by
// another edge, writes one when it obtains or renews one).

// leafNotAfter is a certificate's leaf's expiry; zero if it has none.
func leafNotAfter(c *tls.Certificate) time.Time {
	if c == nil {
		return time.Time{}
	}
	if c.Leaf != nil {
		return c.Leaf.NotAfter
	}
	if len(c.Certificate) == 0 {
		return time.Time{}
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return time.Time{}
	}
	return leaf.NotAfter
}

// noteACMECert records the expiry of the certificate autocert has for
// host (a canonical name); a zero time is ignored.
func (s *Server) noteACMECert(host string, notAfter time.Time) {
	if notAfter.IsZero() || host == "" {
		return
	}
	if old, ok := s.acmeExpiry.Load(host); ok && old.(time.Time).Equal(notAfter) {
		return // the common case: every handshake of the same certificate
	}
	s.acmeExpiry.Store(host, notAfter)
}

// certNotAfter is the expiry of the certificate t serves for a route
// host ("*.example.com" and "*" as the table has them); zero when it
// has no TLS or no certificate yet.
func (s *Server) certNotAfter(t *table, host string) time.Time {
	e := t.tls(host)
	switch {
	case e == nil:
		return time.Time{}
	case e.acme:
		if v, ok := s.acmeExpiry.Load(canonicalHost(host)); ok {
			return v.(time.Time)
		}
		return time.Time{}
	default:
		return e.notAfter
	}
}

// watchedCache is the Manager's view of the edge's Cache: certificate
// entries passing through have their expiry noted.
type watchedCache struct {
	*Cache
	s *Server
}

func (w watchedCache) Get(ctx context.Context, name string) ([]byte, error) {
	data, err := w.Cache.Get(ctx, name)
	if err == nil {
		w.note(name, data)
	}
	return data, err
}

func (w watchedCache) Put(ctx context.Context, name string, data []byte) error {
	err := w.Cache.Put(ctx, name, data)
	if err == nil {
		w.note(name, data)
	}
	return err
}

// note records a certificate entry's expiry under its host. autocert
// names an ECDSA certificate by its host, an RSA one host+"+rsa" (served
// only to clients without ECDSA: not noted), tokens and the account key
// otherwise.
func (w watchedCache) note(name string, data []byte) {
	if strings.ContainsAny(name, "+/") {
		return
	}
	if leaf := certLeaf(data); leaf != nil {
		w.s.noteACMECert(canonicalHost(name), leaf.NotAfter)
	}
}
