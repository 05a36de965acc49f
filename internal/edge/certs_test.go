package edge

import (
	"crypto/tls"
	"net"
	"os"
	"testing"
	"time"
)

// TestCertInMemory: a certificate given as PEM (a wildcard's here) is
// served by SNI, replaced by the next SetTable, and one whose key does
// not match, or given both ways, is refused with the old table kept.
func TestCertInMemory(t *testing.T) {
	dir := t.TempDir()
	read := func(f string) []byte {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	crt1, key1, cert1 := writeCert(t, dir, "one", 1, "*.mem.test")
	crt2, key2, cert2 := writeCert(t, dir, "two", 2, "*.mem.test")
	bk := newBackends()
	bk.set("web", 80, serveBackend(t, named("web")))
	s, _, addr := startEdgeTLS(t, Config{Dial: bk.Dial})
	routes := []Route{{Host: "*.mem.test", App: "web", Port: 80}}
	set := func(certPEM, keyPEM []byte) error {
		return s.SetTable(Table{Routes: routes, TLS: []TLSHost{{Host: "*.mem.test", CertPEM: certPEM, KeyPEM: keyPEM}}})
	}
	serial := func(cfg *tls.Config) int64 {
		t.Helper()
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if err := set(read(crt1), read(key1)); err != nil {
		t.Fatal(err)
	}
	if got := serial(&tls.Config{RootCAs: pool(cert1), ServerName: "a.mem.test"}); got != 1 {
		t.Errorf("serial %d, want 1", got)
	}
	if err := set(read(crt2), read(key2)); err != nil {
		t.Fatal(err)
	}
	if got := serial(&tls.Config{RootCAs: pool(cert2), ServerName: "b.mem.test"}); got != 2 {
		t.Errorf("after a new certificate: serial %d, want 2", got)
	}
	if err := set(read(crt1), read(key2)); err == nil {
		t.Error("a certificate with another's key: no error")
	}
	if err := s.SetTable(Table{Routes: routes, TLS: []TLSHost{{Host: "*.mem.test", CertPEM: read(crt1), KeyPEM: read(key1), CertFile: crt1, KeyFile: key1}}}); err == nil {
		t.Error("a certificate both in files and in memory: no error")
	}
	if err := s.SetTable(Table{Routes: routes, TLS: []TLSHost{{Host: "mem.test", CertPEM: read(crt1), ACME: true}}}); err == nil {
		t.Error("a certificate in memory and ACME: no error")
	}
	if got := serial(&tls.Config{RootCAs: pool(cert2), ServerName: "c.mem.test"}); got != 2 {
		t.Errorf("after refused tables: serial %d, want 2", got)
	}
}
