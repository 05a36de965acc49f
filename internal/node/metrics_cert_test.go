package node_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/secret"
)

// certExpiring is a self-signed certificate for name and its key, PEM,
// expiring at notAfter.
func certExpiring(t *testing.T, name string, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
}

// TestEdgeRouteCertExpiry: an edge node's route samples carry the time
// left on the certificate it serves the host, from the route's sealed
// secret (here expiring in 3 days: cert_expiry ≈ NotAfter − the sample's
// time), and nothing for a route without TLS.
func TestEdgeRouteCertExpiry(t *testing.T) {
	keys, err := secret.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.WriteFile(keyFile, keys.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	n := newNode(t, "--edge", "--edge-http", addr, "--edge-https", "127.0.0.1:0", "--metrics-interval", "1s", "--secrets-key", keyFile)
	api := app(t, n, "api1", "tenant1.api", []int{8080}, "serve", "127.0.0.1:8080")
	waitLog(t, n, api.ID, "serving")

	notAfter := time.Now().Add(72 * time.Hour).Truncate(time.Second) // x509 keeps seconds
	env, err := secret.Seal(secret.Binding{Tenant: "tenant1", App: "api", Name: "tls", Version: 1}, certExpiring(t, "web.test", notAfter), keys.Sealing())
	if err != nil {
		t.Fatal(err)
	}
	table := edgeTable("web.test", "tenant1.api", "api1")
	table.Ingress[0].Cert = &nodeapi.IngressCert{Secret: "tls", Version: 1, Envelope: env}
	plain := table.Ingress[0]
	plain.Host, plain.Cert = "plain.test", nil
	table.Ingress = append(table.Ingress, plain)
	setLinks(t, n.Client, table)
	waitFor(t, "plain.test answered", 10*time.Second, func() bool {
		code, _, err := edgeGet(addr, "plain.test")
		return err == nil && code == http.StatusOK
	})

	var cursor uint64
	got := map[string]nodeapi.MetricsGroup{}
	at := map[string]time.Time{}
	waitFor(t, "a sample of both routes", 30*time.Second, func() bool {
		p, recs := pullMetrics(t, n, cursor, 5*time.Second)
		cursor = p.Newest
		for _, rec := range recs {
			for _, g := range rec.Groups {
				if g.Kind == nodeapi.GroupRoute {
					got[g.Name], at[g.Name] = g, rec.Time
				}
			}
		}
		return len(got) == 2
	})
	want := notAfter.Sub(at["web.test"]).Seconds()
	if v := got["web.test"].Value("cert_expiry"); !(math.Abs(v-want) < 2) {
		t.Errorf("web.test cert_expiry %v s, want %v (NotAfter %s − sample time %s)", v, want, notAfter.Format(time.RFC3339), at["web.test"].Format(time.RFC3339Nano))
	}
	if v := got["plain.test"].Value("cert_expiry"); !math.IsNaN(v) {
		t.Errorf("plain.test (no TLS) cert_expiry %v; want unknown", v)
	}
}
