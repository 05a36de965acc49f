package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for names to dir and returns
// the files and the parsed certificate.
func writeCert(t testing.TB, dir, base string, serial int64, names ...string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return certFile, keyFile, cert
}

func startEdgeTLS(t testing.TB, cfg Config) (*Server, string, string) {
	t.Helper()
	s, plain := startEdge(t, cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeTLS(l)
	return s, plain, l.Addr().String()
}

// TestHTTP2Streaming: a client speaking HTTP/2 over TLS (ALPN h2) gets
// events streamed as they are written, with a certificate from files; a
// SetTable with new files serves the new certificate to the next
// handshake, and the plain listener redirects the TLS host to https.
func TestHTTP2Streaming(t *testing.T) {
	dir := t.TempDir()
	crt, key, cert := writeCert(t, dir, "one", 1, "secure.test")
	events := newSSE("h2")
	mux := http.NewServeMux()
	mux.Handle("/sse", events)
	mux.Handle("/", named("h2"))
	bk := newBackends()
	bk.set("web", 80, serveBackend(t, mux))
	s, plain, addr := startEdgeTLS(t, Config{Dial: bk.Dial})
	routes := []Route{{Host: "secure.test", App: "web", Port: 80}}
	if err := s.SetTable(Table{Routes: routes, TLS: []TLSHost{{Host: "secure.test", CertFile: crt, KeyFile: key}}}); err != nil {
		t.Fatal(err)
	}
	h2 := func(root *x509.Certificate) *http.Client {
		pool := x509.NewCertPool()
		pool.AddCert(root)
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "secure.test"},
			ForceAttemptHTTP2: true,
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	c := h2(cert)
	ev := openSSE(t, c, "https://"+addr+"/sse", "secure.test", events)
	if ev.resp.ProtoMajor != 2 || ev.resp.TLS == nil || ev.resp.TLS.NegotiatedProtocol != "h2" {
		t.Fatalf("protocol %s, ALPN %v: want HTTP/2 negotiated by ALPN", ev.resp.Proto, ev.resp.TLS)
	}
	for range 3 {
		ev.expect(t)
	}
	req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
	req.Host = "secure.test"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "xfp=https "; !strings.Contains(string(body), want) {
		t.Errorf("over TLS the backend saw %q, want %s", body, want)
	}

	status, loc := redirect(t, plain, "secure.test", "/a?b=c")
	if status != http.StatusPermanentRedirect || loc != "https://secure.test/a?b=c" {
		t.Errorf("plain request to a TLS host: %d %q, want 308 to https", status, loc)
	}

	// New files, same paths: the next handshake gets the new certificate.
	_, _, cert2 := writeCert(t, dir, "one", 2, "secure.test")
	if err := s.SetTable(Table{Routes: routes, TLS: []TLSHost{{Host: "secure.test", CertFile: crt, KeyFile: key}}}); err != nil {
		t.Fatal(err)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool(cert2), ServerName: "secure.test"})
	if err != nil {
		t.Fatalf("after reload: %v", err)
	}
	if got := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 2 {
		t.Errorf("after reload: serial %d, want 2", got)
	}
	conn.Close()
	ev.expect(t) // the stream opened before the reload goes on

	// A broken file keeps the old table.
	if err := s.SetTable(Table{Routes: routes, TLS: []TLSHost{{Host: "secure.test", CertFile: crt, KeyFile: filepath.Join(dir, "missing")}}}); err == nil {
		t.Error("SetTable with a missing key file: no error")
	}
	if _, err := h2(cert2).Do(req); err != nil {
		t.Errorf("after a refused SetTable: %v", err)
	}
	// No certificate for a name: the handshake fails.
	if _, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "other.test", InsecureSkipVerify: true}); err == nil {
		t.Error("handshake for a name without a certificate succeeded")
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func redirect(t testing.TB, addr, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+path, nil)
	req.Host = host
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// TestProxyProtocolOverHTTP2: the PROXY header names the client of an
// HTTP/2 connection too (the addresses come from the request, whichever
// protocol carried it).
func TestProxyProtocolOverHTTP2(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: named("pp"), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ppListener{Listener: l, t: t})
	t.Cleanup(func() { srv.Close() })
	bk := newBackends()
	bk.set("pp", 1, l.Addr().String())
	crt, key, cert := writeCert(t, t.TempDir(), "pp", 1, "pp.test")
	s, _, addr := startEdgeTLS(t, Config{Dial: bk.Dial})
	if err := s.SetTable(Table{
		Routes: []Route{{Host: "pp.test", App: "pp", Port: 1, ProxyProtocol: 2}},
		TLS:    []TLSHost{{Host: "pp.test", CertFile: crt, KeyFile: key}},
	}); err != nil {
		t.Fatal(err)
	}
	var local string
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool(cert), ServerName: "pp.test"},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, a)
			if err == nil {
				local = c.LocalAddr().String()
			}
			return c, err
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
	req.Host = "pp.test"
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.HasSuffix(string(body), "remote="+local) {
		t.Errorf("%s: upstream saw %q, want remote=%s", resp.Proto, body, local)
	}
}

// TestH2C: HTTP/2 without TLS on the plain listener only when asked.
func TestH2C(t *testing.T) {
	bk := newBackends()
	bk.set("web", 80, serveBackend(t, named("web")))
	for _, on := range []bool{true, false} {
		s, addr := startEdge(t, Config{Dial: bk.Dial, H2C: on})
		if err := s.SetTable(Table{Routes: []Route{{Host: "web.test", App: "web", Port: 80}}}); err != nil {
			t.Fatal(err)
		}
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: p}
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "web.test"
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if on && (err != nil || resp.ProtoMajor != 2) {
			t.Errorf("H2C on: %v %v, want HTTP/2", resp, err)
		}
		if !on && err == nil {
			t.Errorf("H2C off: %s answered, want HTTP/2 refused", resp.Proto)
		}
		if err == nil {
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
	}
}
