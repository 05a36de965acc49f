package node

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/moatcloud/moat/internal/edge"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/secret"
)

// Ingress certificates held as secrets: a route's Cert is the envelope of
// one of its app's secrets, whose value is a PEM certificate chain and its
// PEM private key. The edge node opens it with the node's secrets key,
// checks that it is bound to the route's app and to the secret named, and
// hands the edge the PEM in memory: the key is never written to disk and
// never logged. An envelope that cannot be opened or is no certificate
// leaves its host without TLS, logged once; other routes are unaffected.

// edgeCerts caches opened certificates by envelope (and the app and name
// it is asked for under), so tables that only move endpoints do not open
// them again. Used under edgeProxy.mu.
type edgeCerts struct {
	keyFile string // the node's secrets key, read afresh on each open
	log     *slog.Logger
	opened  map[[32]byte]certPEM
	failed  map[[32]byte]bool // logged already
}

type certPEM struct{ cert, key []byte }

func certID(r nodeapi.IngressRoute) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", r.App, r.Cert.Secret)
	h.Write(r.Cert.Envelope)
	var id [32]byte
	h.Sum(id[:0])
	return id
}

// tlsHost is the edge's TLS entry for a route whose certificate is a
// secret; false when it cannot be had (logged once per envelope).
func (c *edgeCerts) tlsHost(r nodeapi.IngressRoute, used map[[32]byte]bool) (edge.TLSHost, bool) {
	id := certID(r)
	used[id] = true
	if p, ok := c.opened[id]; ok {
		return edge.TLSHost{Host: r.Host, CertPEM: p.cert, KeyPEM: p.key}, true
	}
	if c.failed[id] {
		return edge.TLSHost{}, false
	}
	p, err := c.open(r)
	if err != nil {
		c.failed[id] = true
		c.log.Error("ingress certificate refused: the host is served without TLS", "host", r.Host, "app", r.App, "secret", r.Cert.Secret, "err", err)
		return edge.TLSHost{}, false
	}
	c.opened[id] = p
	return edge.TLSHost{Host: r.Host, CertPEM: p.cert, KeyPEM: p.key}, true
}

// forget drops the certificates no route of the last table used. Their
// PEM is not cleared: the edge's previous table may be serving from it
// until the new one is in place.
func (c *edgeCerts) forget(used map[[32]byte]bool) {
	for id := range c.opened {
		if !used[id] {
			delete(c.opened, id)
		}
	}
	for id := range c.failed {
		if !used[id] {
			delete(c.failed, id)
		}
	}
}

// open opens a route's envelope, checks its binding, and splits its value
// into the certificate chain and the key, checked to match.
func (c *edgeCerts) open(r nodeapi.IngressRoute) (certPEM, error) {
	keys, err := readSecretKeys(c.keyFile)
	if err != nil {
		return certPEM{}, err
	}
	b, value, err := secret.Open(r.Cert.Envelope, keys)
	if err != nil {
		return certPEM{}, err
	}
	defer clear(value)
	tenant, app := appOfKey(r.App)
	if b.Tenant != tenant || b.App != app || b.Name != r.Cert.Secret {
		return certPEM{}, fmt.Errorf("the envelope is secret %s of %s, not secret %s of %s/%s", b.Name, b.AppRef(), r.Cert.Secret, tenant, app)
	}
	return splitCertPEM(value)
}

// splitCertPEM separates a secret's value into the CERTIFICATE blocks and
// the one private key block, and checks that they make a key pair.
func splitCertPEM(value []byte) (certPEM, error) {
	var p certPEM
	for rest := value; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			p.cert = append(p.cert, pem.EncodeToMemory(block)...)
		case strings.HasSuffix(block.Type, "PRIVATE KEY") && p.key == nil:
			p.key = pem.EncodeToMemory(block)
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			return certPEM{}, errors.New("the secret holds more than one private key: want the certificate chain and its key")
		}
		clear(block.Bytes)
	}
	if p.cert == nil || p.key == nil {
		return certPEM{}, errors.New("the secret is not a PEM certificate chain followed by its PEM private key")
	}
	if _, err := tls.X509KeyPair(p.cert, p.key); err != nil {
		clear(p.key)
		return certPEM{}, err
	}
	return p, nil
}

// appOfKey is the tenant and app of an app key as the master makes them
// (store.AppKey): TENANT.APP, or APP in the default tenant.
func appOfKey(key string) (tenant, app string) {
	if t, a, ok := strings.Cut(key, "."); ok {
		return t, a
	}
	return secret.DefaultTenant, key
}
