package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ACME configures certificates from an ACME CA (Let's Encrypt by default).
type ACME struct {
	// DirectoryURL defaults to Let's Encrypt's production directory.
	DirectoryURL string
	// Email is given to the CA for expiry notices; may be empty.
	Email string
	// CacheDir holds the account key and certificates, encrypted with
	// CacheKey (32 bytes); see Cache.
	CacheDir string
	CacheKey []byte
	// Cache, when set, is used instead of CacheDir and CacheKey: the node
	// daemon makes it to replicate it between edges (replica_cache.go).
	Cache *Cache
	// RenewBefore is how long before expiry a certificate is renewed;
	// default (zero) is autocert's: a third of its lifetime, at most 30
	// days.
	RenewBefore time.Duration
	// HTTPClient talks to the CA; tests give one that trusts their CA.
	HTTPClient *http.Client
}

func (a *ACME) manager(s *Server) (*autocert.Manager, error) {
	cache := a.Cache
	if cache == nil {
		var err error
		if cache, err = NewCache(a.CacheDir, a.CacheKey, s.log); err != nil {
			return nil, fmt.Errorf("edge: acme: %w", err)
		}
	}
	dir := a.DirectoryURL
	if dir == "" {
		dir = autocert.DefaultACMEDirectory
	}
	return &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		Cache:       watchedCache{cache, s},
		HostPolicy:  s.acmePolicy,
		RenewBefore: a.RenewBefore,
		Email:       a.Email,
		Client:      &acme.Client{DirectoryURL: dir, HTTPClient: a.HTTPClient},
	}, nil
}

// acmePolicy lets the Manager ask the CA only for names the current table
// marks ACME, so a client cannot make the edge request certificates (and
// spend the CA's rate limits) for names of its choosing.
func (s *Server) acmePolicy(_ context.Context, host string) error {
	if e := s.table.Load().hosts[canonicalHost(host)]; e != nil && e.acme {
		return nil
	}
	return fmt.Errorf("edge: %q is not an ACME host", host)
}

// TLSConfig is the TLS side of ServeTLS: certificates chosen by SNI from
// the current table, HTTP/2 by ALPN, and the TLS-ALPN-01 protocol when
// ACME is on.
func (s *Server) TLSConfig() *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if s.acme != nil {
		protos = append(protos, acme.ALPNProto)
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     protos,
		GetCertificate: s.getCertificate,
	}
}

var errNoCert = errors.New("edge: no certificate for this name")

// getCertificate reads the table at handshake time, so a SetTable with new
// certificate files or PEM applies to the next handshake; connections
// already open keep theirs.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	e := s.table.Load().tls(hello.ServerName)
	switch {
	case e == nil:
		return nil, errNoCert
	case e.acme:
		// The Manager also answers TLS-ALPN-01 handshakes from the CA,
		// which must not wait for an order (claim.go).
		challenge := slices.Equal(hello.SupportedProtos, []string{acme.ALPNProto})
		if c, ok := s.acme.Cache.(watchedCache); ok && !challenge {
			c.BeforeOrder(hello.Context(), canonicalHost(hello.ServerName))
		}
		c, err := s.acme.GetCertificate(hello)
		if err == nil && !challenge {
			s.noteACMECert(canonicalHost(hello.ServerName), leafNotAfter(c))
		}
		return c, err
	default:
		return e.cert, nil
	}
}
