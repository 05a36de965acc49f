package master_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/testcluster"
)

// TestIngressACME: an edge node gets web.test's certificate from pebble (a
// real ACME CA, trusted through the node's acme-ca-file, validating the
// challenge against the node's own ports) and serves web over HTTPS to a
// client trusting pebble's root; plain HTTP is redirected; the cache on
// the node holds no private key in clear, and its key is 0600.
func TestIngressACME(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	n1, _ := c.Node("n1")
	pb := testcluster.StartPebble(t, testcluster.PebbleOptions{
		Listen: c.Gateway, Resolve: n1.Addr, HTTPPort: 80, TLSPort: 443,
		CAFileDir: filepath.Join(n1.Dir, "etc-moat"),
	})
	c.AddNodeConf("n1", "edge=true", "acme-directory="+pb.Directory, "acme-ca-file=/etc/moat/"+filepath.Base(pb.CAFile))
	m := c.StartMaster()
	c.Enrol(m, "n1")
	m.ImportProbe(t, "probe:1")
	e := &env{t: t, c: c, m: m}
	r := e.deploy(strings.Replace(ingressSpec("web", "web.test", 1), "port: http}]", "port: http, tls: acme}]", 1))
	e.wait("web", r.Revision)

	edge := n1.Addr.String()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(edge, port))
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext:     dial,
		TLSClientConfig: &tls.Config{RootCAs: pb.Roots},
	}}
	// The first handshake waits for the certificate's issuance.
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := client.Get("https://web.test/")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), "probe web-") {
				if cert := resp.TLS.PeerCertificates[0]; len(cert.DNSNames) != 1 || cert.DNSNames[0] != "web.test" {
					t.Fatalf("https://web.test: a certificate for %v", cert.DNSNames)
				}
				break
			}
			err = fmt.Errorf("%s %q", resp.Status, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("https://web.test through the edge within 90s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(edge, "80")+"/x", nil)
	req.Host = "web.test"
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://web.test/x" {
		t.Errorf("http://web.test/x: %s, Location %q; want 308 to https", resp.Status, resp.Header.Get("Location"))
	}

	state := filepath.Join(n1.Dir, "var-lib-moat", "edge")
	st, err := os.Stat(filepath.Join(state, "acme.key"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Errorf("the cache key: %v, %v; want 32 bytes, 0600", st, err)
	}
	entries, err := os.ReadDir(filepath.Join(state, "acme"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("the ACME cache: %v, %v", entries, err)
	}
	for _, en := range entries {
		b, _ := os.ReadFile(filepath.Join(state, "acme", en.Name()))
		if strings.Contains(string(b), "PRIVATE KEY") || strings.Contains(string(b), "CERTIFICATE") {
			t.Errorf("cache entry %s holds PEM in clear", en.Name())
		}
	}
}
