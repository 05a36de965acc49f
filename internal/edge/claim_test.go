package edge

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// TestClaimWaitEndsWithOwnCertificate: a handshake waiting for the
// certificate another edge claimed stops waiting as soon as the
// certificate is in this edge's cache, even when this edge ordered it
// itself (an earlier handshake gave up waiting and ordered), rather than
// holding the handshake, and every one queued behind it, for ClaimWait.
func TestClaimWaitEndsWithOwnCertificate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, other := newTestCache(t, 7), newTestCache(t, 7)
	out := NewOutbox(c, quietLog())
	out.Next(ctx, 0, 0) // a master pulls: claims are carried

	// The other edge's fresh claim, as the master hands it over.
	cl, _ := json.Marshal(claim{By: "the other edge", At: time.Now()})
	name := "web.test" + ClaimSuffix
	if err := other.Put(ctx, name, cl); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(other.path(name))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.InstallClaim(NameHash(name), data); !ok || err != nil {
		t.Fatalf("the other edge's claim: %v %v", ok, err)
	}

	done := make(chan time.Duration, 1)
	t0 := time.Now()
	go func() { c.BeforeOrder(ctx, "web.test"); done <- time.Since(t0) }()
	// The handshake is waiting (the claim is the other edge's).
	select {
	case d := <-done:
		t.Fatalf("BeforeOrder returned after %v with another edge's fresh claim and no certificate", d)
	case <-time.After(200 * time.Millisecond):
	}
	if err := c.Put(ctx, "web.test", []byte("ordered here")); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-done:
		if d > 3*time.Second {
			t.Errorf("BeforeOrder returned %v after it began, the certificate put after 200ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("BeforeOrder still waiting 5s after the certificate was put in this edge's cache")
	}
}
