package node

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/secret"
)

// selfSigned is a certificate for name and its key, PEM.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// TestEdgeCerts: a route's certificate opens only when its envelope is
// bound to the route's app (tenant and name from the app key) and to the
// secret named, and is a certificate chain with its key; anything else is
// refused and logged once without the value (the host is then not served:
// TestEdgeTableBrokenCertificate).
func TestEdgeCerts(t *testing.T) {
	keys, err := secret.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.WriteFile(keyFile, keys.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	crt, key := selfSigned(t, "web.test")
	_, otherKey := selfSigned(t, "web.test")
	seal := func(tenant, app, name string, value []byte) []byte {
		env, err := secret.Seal(secret.Binding{Tenant: tenant, App: app, Name: name, Version: 1}, value, keys.Sealing())
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	good := append(append([]byte{}, crt...), key...)
	var logs bytes.Buffer
	c := edgeCerts{keyFile: keyFile, log: slog.New(slog.NewTextHandler(&logs, nil)), opened: map[[32]byte]certPEM{}, failed: map[[32]byte]bool{}}
	route := func(app, name string, env []byte) nodeapi.IngressRoute {
		return nodeapi.IngressRoute{Host: "web.test", App: app, Cert: &nodeapi.IngressCert{Secret: name, Version: 1, Envelope: env}}
	}
	for _, tc := range []struct {
		name string
		r    nodeapi.IngressRoute
		ok   bool
	}{
		{"default tenant", route("web", "tls", seal("default", "web", "tls", good)), true},
		{"a tenant's app", route("t2.web", "tls", seal("t2", "web", "tls", good)), true},
		{"key first", route("web", "tls", seal("default", "web", "tls", append(append([]byte{}, key...), crt...))), true},
		{"another tenant's app", route("t2.web", "tls", seal("default", "web", "tls", good)), false},
		{"another app", route("api", "tls", seal("default", "web", "tls", good)), false},
		{"another secret", route("web", "tls", seal("default", "web", "db_password", good)), false},
		{"not PEM", route("web", "tls", seal("default", "web", "tls", []byte("hunter2"))), false},
		{"no key", route("web", "tls", seal("default", "web", "tls", crt)), false},
		{"another key", route("web", "tls", seal("default", "web", "tls", append(append([]byte{}, crt...), otherKey...))), false},
		{"two keys", route("web", "tls", seal("default", "web", "tls", append(append(append([]byte{}, crt...), key...), key...))), false},
		{"not an envelope", route("web", "tls", []byte("age-encryption.org/v1 nonsense")), false},
	} {
		logs.Reset()
		used := map[[32]byte]bool{}
		for range 2 { // the second time from the cache: no second log line
			h, ok := c.tlsHost(tc.r, used)
			if ok != tc.ok {
				t.Errorf("%s: ok %v, want %v (log %s)", tc.name, ok, tc.ok, logs.String())
			}
			if ok && (!bytes.Equal(h.CertPEM, crt) || !bytes.Contains(h.KeyPEM, []byte("PRIVATE KEY")) || bytes.Contains(h.CertPEM, []byte("PRIVATE KEY"))) {
				t.Errorf("%s: cert %q, key of %d bytes: want the chain and the key apart", tc.name, h.CertPEM, len(h.KeyPEM))
			}
		}
		if n := strings.Count(logs.String(), "ingress certificate refused"); n != map[bool]int{true: 0, false: 1}[tc.ok] {
			t.Errorf("%s: %d log lines: %s", tc.name, n, logs.String())
		}
		if !tc.ok && (!strings.Contains(logs.String(), "host=web.test") || !strings.Contains(logs.String(), "secret=")) {
			t.Errorf("%s: the log names no host or secret: %s", tc.name, logs.String())
		}
		if strings.Contains(logs.String(), "PRIVATE KEY") || strings.Contains(logs.String(), "hunter2") {
			t.Errorf("%s: the log holds the value: %s", tc.name, logs.String())
		}
	}
	c.forget(map[[32]byte]bool{})
	if len(c.opened)+len(c.failed) != 0 {
		t.Errorf("after a table without certificates: %d opened, %d failed kept", len(c.opened), len(c.failed))
	}
}

// TestEdgeTableBrokenCertificate: a host whose certificate cannot be used
// is left out of the proxy's routes, so it is not served in plain HTTP;
// the other hosts are routed as before.
func TestEdgeTableBrokenCertificate(t *testing.T) {
	keys, err := secret.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.WriteFile(keyFile, keys.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &edgeProxy{certs: edgeCerts{keyFile: keyFile, log: slog.New(slog.NewTextHandler(io.Discard, nil)), opened: map[[32]byte]certPEM{}, failed: map[[32]byte]bool{}}}
	bad := &nodeapi.IngressCert{Secret: "tls", Version: 1, Envelope: []byte("age-encryption.org/v1 nonsense")}
	table, aliases := p.table([]nodeapi.IngressRoute{
		{Host: "web.test", Path: "/", App: "web", Port: 8080, Link: nodeapi.LinkID(nodeapi.EdgeSource, "web", 8080), Cert: bad},
		{Host: "web.test", Path: "/api", App: "web", Port: 8080, Link: nodeapi.LinkID(nodeapi.EdgeSource, "web", 8080)},
		{Host: "shop.test", Path: "/", App: "shop", Port: 8080, Link: nodeapi.LinkID(nodeapi.EdgeSource, "shop", 8080), ACME: true, ProxyProtocol: 1},
	}, map[[32]byte]bool{})
	if len(table.Routes) != 1 || table.Routes[0].Host != "shop.test" || table.Routes[0].Name != "shop" || table.Routes[0].ProxyProtocol != 1 {
		t.Fatalf("routes %+v: want shop.test alone, web.test (broken certificate) left out", table.Routes)
	}
	if len(table.TLS) != 1 || !table.TLS[0].ACME || len(aliases) != 2 {
		t.Fatalf("tls %+v, aliases %v", table.TLS, aliases)
	}
}
