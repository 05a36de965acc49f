package edge

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"testing"
	"time"
)

// certEntry is a cache entry as autocert writes one: the private key,
// then the certificate, valid from notBefore to notAfter.
func certEntry(t *testing.T, host string, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(notBefore.UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	return b.Bytes()
}

// TestReplicaCacheRollback: the master, which keeps every entry it
// carried, cannot hand an edge an older certificate in place of the one
// it holds, nor an expired one (the edge would order again, as if the
// master had deleted it), nor pass an entry off as a claim to get it
// past an edge's own change not yet acknowledged.
func TestReplicaCacheRollback(t *testing.T) {
	ctx := context.Background()
	a, b := newTestCache(t, 7), newTestCache(t, 7)
	now := time.Now()
	sealed := func(name string, plain []byte) []byte {
		t.Helper()
		if err := a.Put(ctx, name, plain); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(a.path(name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	h := NameHash("web.test")
	oldPlain := certEntry(t, "web.test", now.Add(-60*24*time.Hour), now.Add(30*24*time.Hour))
	old := sealed("web.test", oldPlain)
	expired := sealed("web.test", certEntry(t, "web.test", now.Add(-100*24*time.Hour), now.Add(-10*24*time.Hour)))
	newPlain := certEntry(t, "web.test", now.Add(-time.Hour), now.Add(89*24*time.Hour))
	renewed := sealed("web.test", newPlain)

	if ok, err := b.Install(h, expired); ok || err == nil {
		t.Errorf("an expired certificate installed where there was none: %v %v", ok, err)
	}
	if _, err := os.Stat(b.path("web.test")); err == nil {
		t.Fatal("the refused expired certificate is on disk")
	}
	if ok, err := b.Install(h, renewed); !ok || err != nil {
		t.Fatalf("the newest certificate: %v %v", ok, err)
	}
	if ok, err := b.Install(h, old); ok || err == nil {
		t.Errorf("an older certificate installed over the newest: %v %v", ok, err)
	}
	if ok, err := b.Install(h, expired); ok || err == nil {
		t.Errorf("an expired certificate installed over the newest: %v %v", ok, err)
	}
	if got, err := b.Get(ctx, "web.test"); err != nil || !bytes.Equal(got, newPlain) {
		t.Errorf("after the older ones: %.40q %v, want the newest kept", got, err)
	}
	// The same certificate again (the edges' catch-up) is fine.
	if ok, err := b.Install(h, renewed); !ok || err != nil {
		t.Errorf("the newest again: %v %v", ok, err)
	}

	// b renews it itself; before the master acknowledges that, an older
	// entry marked a claim must not overwrite it.
	NewOutbox(b, quietLog())
	mine := certEntry(t, "web.test", now, now.Add(90*24*time.Hour))
	if err := b.Put(ctx, "web.test", mine); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.InstallClaim(h, renewed); ok || err == nil {
		t.Errorf("a certificate marked a claim installed over the edge's own change: %v %v", ok, err)
	}
	if got, err := b.Get(ctx, "web.test"); err != nil || !bytes.Equal(got, mine) {
		t.Errorf("after the false claim: %.40q %v, want the edge's own", got, err)
	}
	// Nor a genuine deletion marked a claim: b puts a token, not yet
	// acknowledged; a's sealed deletion of it stays out.
	if err := b.Put(ctx, "web.test+token", []byte("b's token")); err != nil {
		t.Fatal(err)
	}
	outA := NewOutbox(a, quietLog())
	if err := a.Delete(ctx, "web.test+token"); err != nil {
		t.Fatal(err)
	}
	del := outA.Next(ctx, 0, 0)
	if len(del) != 1 || !IsDeletion(del[0].Data) {
		t.Fatalf("a's outbox after a deletion: %+v", del)
	}
	if ok, err := b.InstallClaim(NameHash("web.test+token"), del[0].Data); ok || err == nil {
		t.Errorf("a deletion marked a claim installed over the edge's own change: %v %v", ok, err)
	}
	if got, err := b.Get(ctx, "web.test+token"); err != nil || string(got) != "b's token" {
		t.Errorf("after the deletion marked a claim: %q %v, want b's token", got, err)
	}
	// A genuine claim still goes through.
	cl, _ := json.Marshal(claim{By: "a", At: now})
	claimed := sealed("web.test"+ClaimSuffix, cl)
	if ok, err := b.InstallClaim(NameHash("web.test"+ClaimSuffix), claimed); !ok || err != nil {
		t.Errorf("a genuine claim: %v %v", ok, err)
	}
}
