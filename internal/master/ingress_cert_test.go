package master_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/secret"
	"github.com/moatcloud/moat/internal/testcluster"
)

// newEdgeSecretsEnv is one node, an edge, holding the cluster's secrets
// key, and web:1 signed as default/web.
func newEdgeSecretsEnv(t *testing.T) *secretsEnv {
	t.Helper()
	c := testcluster.NewCluster(t, 1)
	c.AddNodeConf("n1", "edge=true")
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
	return &secretsEnv{env: &env{t: t, c: c, m: m}, keys: keys, keyFile: keyFile}
}

// testCert is a self-signed certificate for name: the secret's value
// (chain then key, as an operator cats them), the key's PEM, the parsed
// certificate.
func testCert(t *testing.T, name string, serial int64) (value, keyPEM string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + keyPEM, keyPEM, cert
}

// TestIngressCertSecret: the edge serves web.test over HTTPS with a
// certificate the operator set as one of web's secrets; a new version is
// served from the next handshake on while a stream opened before goes on;
// neither the master's state nor the edge node's disk holds the key.
func TestIngressCertSecret(t *testing.T) {
	e := newEdgeSecretsEnv(t)
	value1, key1, cert1 := testCert(t, "web.test", 1)
	value2, key2, cert2 := testCert(t, "web.test", 2)
	e.moat(value1, "secret", "set", "web", "tls")
	r := e.deploy(`name: web
image: web:1
args: [serve, ":8080"]
resources: {cpu: 100m, memory: 32Mi}
ports: [{name: http, port: 8080}]
health: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}
update: {deadline: 20s, drain: 2s}
secrets: [{name: tls, reload: signal}]
ingress: [{host: web.test, port: http, tls: {secret: tls}}]
`)
	e.wait("web", r.Revision)

	// Another app cannot give web.test a certificate of its own.
	_, err := e.m.Client.Deploy(context.Background(), masterapi.DeployRequest{File: "app.yaml", Spec: `name: api
image: web:1
args: [serve, ":8080"]
ports: [{name: http, port: 8080}]
ingress: [{host: web.test, path: /api, port: http, tls: acme}]
`})
	if err == nil || !strings.Contains(err.Error(), "ingress[0].tls: web.test gets its certificate from app web") {
		t.Errorf("deploy of api giving web.test another certificate: %v", err)
	}

	edge := e.nodeAddr("n1")
	client := func(roots ...*x509.Certificate) *http.Client {
		p := x509.NewCertPool()
		for _, c := range roots {
			p.AddCert(c)
		}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(edge, port))
			},
			TLSClientConfig: &tls.Config{RootCAs: p},
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Timeout: 10 * time.Second, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	// servedSerial polls, each time on a new connection, until the edge
	// answers https://web.test/ from web with the certificate serial want.
	servedSerial := func(want int64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			c := client(cert1, cert2)
			resp, err := c.Get("https://web.test/")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got := resp.TLS.PeerCertificates[0].SerialNumber.Int64()
				if resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), "probe web-") && got == want {
					return
				}
				err = fmt.Errorf("%s %q, certificate serial %d", resp.Status, body, got)
			}
			c.Transport.(*http.Transport).CloseIdleConnections()
			if time.Now().After(deadline) {
				t.Fatalf("https://web.test with certificate %d within %s: %v", want, within, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	servedSerial(1, 30*time.Second)
	// A client trusting only the secret's certificate gets it, for
	// web.test; plain HTTP is sent there.
	if resp, err := client(cert1).Get("https://web.test/"); err != nil {
		t.Fatalf("a client trusting the certificate: %v", err)
	} else {
		resp.Body.Close()
	}
	if resp, err := client().Get("http://web.test/x"); err != nil || resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://web.test/x" {
		t.Errorf("http://web.test/x: %v %v, want 308 to https", resp, err)
	} else {
		resp.Body.Close()
	}

	// A stream over HTTPS, open across the new version.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://web.test/stream", nil)
	streamClient := client(cert1)
	streamClient.Timeout = 0
	resp, err := streamClient.Do(req)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	defer resp.Body.Close()
	lines, streamErr := countLines(resp.Body)

	e.moat(value2, "secret", "set", "web", "tls")
	servedSerial(2, 30*time.Second)
	before := lines.Load()
	deadline := time.Now().Add(5 * time.Second)
	for lines.Load() < before+5 {
		select {
		case err := <-streamErr:
			t.Fatalf("the stream opened before the new certificate: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream stalled after the new certificate: %d lines, %d before", lines.Load(), before)
		}
	}
	cancel()

	// The key is in no file of the master's (its database included) nor
	// of the edge node's (its daemon's log among them), but for the
	// container's own secrets tmpfs, and not in the master's log.
	n1, _ := e.c.Node("n1")
	envelopes := 0 // files holding an envelope: the walk sees what the master stores
	for _, dir := range []string{e.m.Dir, n1.Dir} {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && d.Name() == "secrets" && strings.Contains(path, "containers") {
				return fs.SkipDir // the container's /run/secrets, in memory
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, []byte("age-encryption.org/")) {
				envelopes++
			}
			for i, k := range []string{key1, key2} {
				if bytes.Contains(b, []byte(k)) || bytes.Contains(b, []byte(strings.Split(k, "\n")[1])) {
					t.Errorf("%s holds key %d", path, i+1)
				}
			}
			return nil
		})
	}
	if envelopes == 0 {
		t.Error("no file of the master's holds an envelope: the walk missed its database")
	}
	for i, k := range []string{key1, key2} {
		if strings.Contains(e.m.Log(), strings.Split(k, "\n")[1]) {
			t.Errorf("the master's log holds key %d", i+1)
		}
	}
}
