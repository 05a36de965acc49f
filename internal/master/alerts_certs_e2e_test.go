package master_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/secret"
	"github.com/moatcloud/moat/internal/testcluster"
)

// certValue is a self-signed certificate for name expiring at notAfter,
// as a secret's value (chain then key).
func certValue(t *testing.T, name string, serial int64, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// TestCertExpiryAlert: a real edge serving web.test with a certificate
// from web's secret that expires in 3 days reports it in its route
// samples; the master's newest sample of the route says so, and
// cert-expiring fires for web naming the host; a new version of the
// secret expiring in 90 days resolves it.
func TestCertExpiryAlert(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.AddNodeConf("n1", "edge=true", "metrics-interval=1s")
	m := c.StartMaster()
	c.Enrol(m, "n1")
	m.ImportProbe(t, "web:1", "--app", "default/web")
	keys, err := secret.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.WriteFile(keyFile, keys.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Nodes[0].Dir, "etc-moat", "secrets.key"), keys.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &secretsEnv{env: &env{t: t, c: c, m: m}, keys: keys, keyFile: keyFile}

	notAfter := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	e.moat(certValue(t, "web.test", 1, notAfter), "secret", "set", "web", "tls")
	r := e.deploy(`name: web
image: web:1
args: [serve, ":8080"]
resources: {cpu: 100m, memory: 32Mi}
ports: [{name: http, port: 8080}]
secrets: [{name: tls, reload: signal}]
ingress: [{host: web.test, port: http, tls: {secret: tls}}]
`)
	e.wait("web", r.Revision)
	ctx := context.Background()

	deadline := time.Now().Add(60 * time.Second)
	var route masterapi.Latest
	for {
		latest, err := m.Client.MetricsLatest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range latest {
			if l.Kind == masterapi.MetricsRoute && l.Name == "web.test" && !math.IsNaN(l.Value("cert_expiry")) {
				route = l
			}
		}
		if route.Name != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sample of web.test's certificate within a minute: %+v", latest)
		}
		time.Sleep(200 * time.Millisecond) // polling the pull, with a deadline
	}
	if want := notAfter.Sub(route.Time).Seconds(); route.App != "web" || route.Node != "n1" || !(math.Abs(route.Value("cert_expiry")-want) < 2) {
		t.Errorf("web.test's newest sample %+v: cert_expiry %v, want %v of web on n1", route, route.Value("cert_expiry"), want)
	}

	// alertsOf polls until ok holds of the alerts.
	alertsOf := func(what string, ok func(masterapi.AlertList) bool) masterapi.AlertList {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			list, err := m.Client.Alerts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ok(list) {
				return list
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s within 30 s: %+v", what, list)
			}
			time.Sleep(200 * time.Millisecond) // polling the evaluation, with a deadline
		}
	}
	certAlert := func(as []masterapi.Alert) *masterapi.Alert {
		for i, a := range as {
			if a.Key == "cert-expiring/web.test" {
				return &as[i]
			}
		}
		return nil
	}
	list := alertsOf("cert-expiring/web.test firing", func(l masterapi.AlertList) bool { return certAlert(l.Active) != nil })
	a := certAlert(list.Active)
	if a.App != "web" || a.Value != 3 || a.Severity != "warning" {
		t.Errorf("alert %+v; want web's, 3 days, a warning", a)
	}
	t.Logf("fired: %s", a.Summary)

	e.moat(certValue(t, "web.test", 2, time.Now().Add(90*24*time.Hour)), "secret", "set", "web", "tls")
	alertsOf("cert-expiring/web.test resolved", func(l masterapi.AlertList) bool {
		return certAlert(l.Active) == nil && certAlert(l.Resolved) != nil
	})
}
