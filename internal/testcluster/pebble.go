package testcluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Pebble is Let's Encrypt's pebble, a real ACME server (go.mod's tool
// dependency github.com/letsencrypt/pebble/v2, built once into the temp
// directory), run for a test on an address nodes reach: it validates
// every challenge by really connecting to the name's address, which a DNS
// responder of the test gives as the one asked for.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// CAFile is a PEM file of the root pebble's own TLS chains to (made
	// here for its address): what a node's acme-ca-file names.
	CAFile string
	// Roots holds the root of the certificates pebble issues.
	Roots *x509.CertPool
}

// PebbleOptions say where pebble listens and what it validates.
type PebbleOptions struct {
	Listen    netip.Addr // address its API listens on (a port is chosen)
	Resolve   netip.Addr // every name's A record
	HTTPPort  int        // HTTP-01 is validated on this port of Resolve
	TLSPort   int        // TLS-ALPN-01 on this one
	Validity  int        // seconds a certificate lives; default 3600
	CAFileDir string     // where CAFile is written; default a temp dir
}

// pebbleVersion is go.mod's tool dependency: the cached binary's name
// carries it, so a new version is built again.
const pebbleVersion = "v2.10.3"

var (
	pebbleOnce sync.Once
	pebbleBin  string
	pebbleErr  error
)

func buildPebble(t testing.TB) string {
	t.Helper()
	pebbleOnce.Do(func() {
		pebbleBin = filepath.Join(os.TempDir(), "moat-test-pebble-"+pebbleVersion+"-"+runtime.Version())
		if _, err := os.Stat(pebbleBin); err == nil {
			return
		}
		tmp := fmt.Sprintf("%s.%d", pebbleBin, os.Getpid())
		if out, err := exec.Command("go", "build", "-o", tmp, "github.com/letsencrypt/pebble/v2/cmd/pebble").CombinedOutput(); err != nil {
			pebbleErr = fmt.Errorf("go build pebble: %w\n%s", err, out)
			return
		}
		pebbleErr = os.Rename(tmp, pebbleBin)
	})
	if pebbleErr != nil {
		t.Fatal(pebbleErr)
	}
	return pebbleBin
}

// StartPebble runs pebble until the test ends.
func StartPebble(t testing.TB, o PebbleOptions) *Pebble {
	t.Helper()
	bin := buildPebble(t)
	dir := t.TempDir()
	if o.CAFileDir == "" {
		o.CAFileDir = dir
	}
	if o.Validity == 0 {
		o.Validity = 3600
	}
	p := &Pebble{CAFile: filepath.Join(o.CAFileDir, "pebble-ca.pem")}
	certFile, keyFile, pool := pebbleTLS(t, o.Listen, dir, p.CAFile)
	api, mgmt := FreePort(t, o.Listen), FreePort(t, netip.MustParseAddr("127.0.0.1"))
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           netip.AddrPortFrom(o.Listen, uint16(api)).String(),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":             certFile,
		"privateKey":              keyFile,
		"httpPort":                o.HTTPPort,
		"tlsPort":                 o.TLSPort,
		"keyAlgorithm":            "ecdsa",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"profiles":                map[string]any{"default": map[string]any{"description": "test", "validityPeriod": o.Validity}},
	}}
	data, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var log LockedBuffer
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", serveDNS(t, o.Resolve))
	// No PEBBLE_VA_ALWAYS_VALID: every challenge is really validated.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble:\n%s", log.String())
		}
	})
	p.Directory = fmt.Sprintf("https://%s/dir", netip.AddrPortFrom(o.Listen, uint16(api)))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	// pebble's management listener uses the same certificate, for
	// another address: trust it without a name check, on loopback only.
	mgmtClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(p.Directory)
		if err == nil {
			resp.Body.Close()
			if resp, err = mgmtClient.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmt)); err == nil {
				root, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				p.Roots = x509.NewCertPool()
				if resp.StatusCode == http.StatusOK && p.Roots.AppendCertsFromPEM(root) {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble not serving within 30s: %v\n%s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond) // polling pebble's start, with a deadline
	}
}

// pebbleTLS makes a CA (written to caFile) and a certificate it signs for
// addr, pebble's own TLS.
func pebbleTLS(t testing.TB, addr netip.Addr, dir, caFile string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "moat test pebble CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: addr.String()},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{addr.AsSlice()}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "pebble-cert.pem"), filepath.Join(dir, "pebble-key.pem")
	for path, block := range map[string]*pem.Block{
		caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: leafDER},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(caCert)
	return certFile, keyFile, pool
}

// FreePort is a TCP port nothing listens on now at addr.
func FreePort(t testing.TB, addr netip.Addr) int {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serveDNS answers every A query with ip and any other with no records,
// over TCP on loopback (pebble's -dnsserver client speaks TCP), until the
// test ends. It is pebble's resolver and nothing else's.
func serveDNS(t testing.TB, ip netip.Addr) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveDNSConn(c, ip.As4())
		}
	}()
	return l.Addr().String()
}

// serveDNSConn answers length-prefixed queries (RFC 1035 4.2.2).
func serveDNSConn(c net.Conn, ip [4]byte) {
	defer c.Close()
	for {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		resp := dnsAnswer(q, ip)
		if resp == nil {
			return
		}
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...)); err != nil {
			return
		}
	}
}

// dnsAnswer builds the reply to one query (RFC 1035 4.1): the header with
// the query's id, the question as asked, and for an A query one record of
// ip pointing back at the question's name.
func dnsAnswer(q []byte, ip [4]byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	question := q[12 : i+5]
	var an byte
	if binary.BigEndian.Uint16(q[i+1:]) == 1 {
		an = 1
	}
	r := append([]byte{}, q[0], q[1], 0x81, 0x80, 0, 1, 0, an, 0, 0, 0, 0)
	r = append(r, question...)
	if an == 1 {
		r = append(r, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
		r = append(r, ip[:]...)
	}
	return r
}
