package edge

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/testcluster"
)

// The ACME tests run Let's Encrypt's pebble, a real ACME server, on
// loopback: it really validates each challenge by connecting to the
// edge's listeners, resolving the test name through a DNS responder the
// test runs (so nothing of the system's resolver is touched).

// pebble is a running pebble (testcluster.StartPebble) on loopback: its
// directory URL, a client that trusts its TLS, and the root its
// certificates chain to.
type pebble struct {
	dir    string
	client *http.Client
	root   *x509.CertPool
}

// startPebble runs pebble validating HTTP-01 on httpPort and TLS-ALPN-01
// on tlsPort of 127.0.0.1, issuing certificates valid for validity seconds.
func startPebble(t testing.TB, httpPort, tlsPort, validity int) *pebble {
	t.Helper()
	lo := netip.MustParseAddr("127.0.0.1")
	p := testcluster.StartPebble(t, testcluster.PebbleOptions{Listen: lo, Resolve: lo, HTTPPort: httpPort, TLSPort: tlsPort, Validity: validity})
	ca, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	trust := x509.NewCertPool()
	trust.AppendCertsFromPEM(ca)
	return &pebble{dir: p.Directory, root: p.Roots,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: trust}}}}
}

func freePort(t testing.TB) int { return testcluster.FreePort(t, netip.MustParseAddr("127.0.0.1")) }

// TestACME gets a certificate from pebble for each challenge type: the
// other type's port points at a closed port, so the certificate can only
// have come through the one under test. Then it checks a client trusting
// pebble's root gets it from the edge, that nothing in the cache holds
// the private key in clear, and that a certificate close to expiry is
// renewed.
func TestACME(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) { testACME(t, challenge) })
	}
}

func testACME(t *testing.T, challenge string) {
	const host = "edge.moat.test"
	plainL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpPort, tlsPort := plainL.Addr().(*net.TCPAddr).Port, tlsL.Addr().(*net.TCPAddr).Port
	if challenge == "http-01" {
		tlsPort = freePort(t)
	} else {
		httpPort = freePort(t)
	}
	// Certificates live 30 s and are renewed 20 s before expiry, so a
	// renewal comes about 10 s after issuance.
	pb := startPebble(t, httpPort, tlsPort, 30)

	bk := newBackends()
	bk.set("web", 80, serveBackend(t, named("web")))
	cacheDir := filepath.Join(t.TempDir(), "acme")
	cacheKey := bytes.Repeat([]byte{42}, 32)
	var logBuf testcluster.LockedBuffer
	s, err := New(Config{
		Dial:   bk.Dial,
		Logger: slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ACME: &ACME{
			DirectoryURL: pb.dir,
			HTTPClient:   pb.client,
			CacheDir:     cacheDir,
			CacheKey:     cacheKey,
			RenewBefore:  20 * time.Second,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(plainL)
	go s.ServeTLS(tlsL)
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("edge:\n%s", logBuf.String())
		}
	})
	if err := s.SetTable(Table{
		Routes: []Route{{Host: host, App: "web", Port: 80}},
		TLS:    []TLSHost{{Host: host, ACME: true}},
	}); err != nil {
		t.Fatal(err)
	}

	// The first handshake waits for the issuance.
	leaf := edgeCert(t, tlsL.Addr().String(), host, pb.root)
	if leaf.DNSNames[0] != host {
		t.Fatalf("certificate for %v", leaf.DNSNames)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pb.root, ServerName: host}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	req, _ := http.NewRequest("GET", "https://"+tlsL.Addr().String()+"/", nil)
	req.Host = host
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "web / ") || resp.ProtoMajor != 2 {
		t.Errorf("over the ACME certificate: %s %q", resp.Proto, body)
	}

	checkCacheSealed(t, cacheDir, cacheKey, host, leaf)

	// The route's certificate expiry, for the node's metrics, is the
	// certificate served; the renewed one's is noted as autocert stores
	// it, before any client is served it.
	if got := s.RouteStats()[host].CertNotAfter; !got.Equal(leaf.NotAfter) {
		t.Errorf("RouteStats cert expiry %v, want the served certificate's %v", got, leaf.NotAfter)
	}
	for !s.RouteStats()[host].CertNotAfter.After(leaf.NotAfter) {
		if time.Now().After(leaf.NotAfter.Add(-2 * time.Second)) {
			t.Fatalf("RouteStats cert expiry still %v: the renewal was not noted", s.RouteStats()[host].CertNotAfter)
		}
		time.Sleep(100 * time.Millisecond) // polling the renewal timer, with a deadline
	}

	// Renewal: the edge serves a new certificate before the first expires.
	deadline := leaf.NotAfter.Add(-2 * time.Second)
	for {
		next := edgeCert(t, tlsL.Addr().String(), host, pb.root)
		if next.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			if !next.NotAfter.After(leaf.NotAfter) {
				t.Errorf("renewed certificate expires %v, not after the first's %v", next.NotAfter, leaf.NotAfter)
			}
			if got := s.RouteStats()[host].CertNotAfter; !got.Equal(next.NotAfter) {
				t.Errorf("RouteStats cert expiry %v, want the renewed certificate's %v", got, next.NotAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate expiring %v was not renewed; edge log:\n%s", leaf.NotAfter, logBuf.String())
		}
		time.Sleep(200 * time.Millisecond) // polling the renewal timer, with a deadline
	}
}

// edgeCert handshakes with the edge as a client trusting root and
// returns the certificate it served.
func edgeCert(t testing.TB, addr, host string, root *x509.CertPool) *x509.Certificate {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{RootCAs: root, ServerName: host}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("TLS to the edge for %s: %v", host, err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0]
}

// checkCacheSealed: every cache file is 0600 and holds neither a PEM
// private key nor the bytes of the certificate's key; the entry opens with
// the key and holds the key of the certificate served.
func checkCacheSealed(t testing.TB, dir string, key []byte, host string, leaf *x509.Certificate) {
	t.Helper()
	c, err := NewCache(dir, key, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	data, err := c.Get(context.Background(), host)
	if err != nil {
		t.Fatalf("cache entry for %s: %v", host, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || !strings.Contains(block.Type, "PRIVATE KEY") {
		t.Fatalf("cache entry does not start with a private key")
	}
	priv, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.PublicKey.Equal(leaf.PublicKey.(*ecdsa.PublicKey)) {
		t.Fatal("cached key is not the served certificate's")
	}
	scalar, _ := priv.Bytes()
	files, _ := os.ReadDir(dir)
	if len(files) < 2 { // the account key and the certificate at least
		t.Fatalf("%d cache files", len(files))
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Name())
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f.Name(), fi.Mode())
		}
		for what, b := range map[string][]byte{"PEM private key": []byte("PRIVATE KEY"), "key DER": block.Bytes, "key scalar": scalar, "certificate": leaf.Raw[:64]} {
			if bytes.Contains(raw, b) {
				t.Errorf("%s holds the %s in clear", f.Name(), what)
			}
		}
	}
}
