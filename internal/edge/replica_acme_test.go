package edge

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/testcluster"
)

// TestACMETwoEdges: two edges share a cache key, and their caches are
// carried to each other (as the master does). A client asks edge A, so A
// orders, but pebble validates at edge B, for each challenge type (the
// other type's port closed): the certificate is issued only if A's
// challenge was on B when the CA looked. B then serves A's certificate.
//
// And when the first handshakes reach both edges at once, only one
// orders (its claim is the first the carrier sees): both serve the same
// certificate.
func TestACMETwoEdges(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) { testACMETwoEdges(t, challenge, false) })
	}
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge+"/both-at-once", func(t *testing.T) { testACMETwoEdges(t, challenge, true) })
	}
}

// hub carries edges' outboxes to each other as internal/master does: one
// carry at a time, claims arbitrated (the first fresh one of a name wins;
// a later one is answered with it).
type hub struct {
	mu     sync.Mutex
	claims map[string]hubClaim
}

type hubClaim struct {
	from int
	data []byte
}

func (h *hub) carry(ctx context.Context, t *testing.T, from int, out *Outbox, caches []*Cache) {
	var acked uint64
	for ctx.Err() == nil {
		for _, e := range out.Next(ctx, acked, time.Second) {
			h.mu.Lock()
			for i, c := range caches {
				var err error
				switch first, held := h.claims[e.Hash]; {
				case e.Claim && held && first.from != from:
					if i == from {
						_, err = c.InstallClaim(e.Hash, first.data)
					}
				case e.Claim:
					h.claims[e.Hash] = hubClaim{from: from, data: e.Data}
					if i != from {
						_, err = c.InstallClaim(e.Hash, e.Data)
					}
				case i != from:
					_, err = c.Install(e.Hash, e.Data)
				}
				if err != nil {
					t.Errorf("install %s: %v", e.Hash, err)
				}
			}
			h.mu.Unlock()
			acked = max(acked, e.Seq)
		}
	}
}

func testACMETwoEdges(t *testing.T, challenge string, both bool) {
	const host = "both.moat.test"
	ctx, cancel := context.WithCancel(context.Background())
	key := bytes.Repeat([]byte{5}, 32)
	type edge struct {
		cache       *Cache
		out         *Outbox
		plain, tlsL net.Listener
		srv         *Server
		dir         string
	}
	edges := make([]*edge, 2)
	for i := range edges {
		e := &edge{dir: filepath.Join(t.TempDir(), "acme")}
		var err error
		if e.cache, err = NewCache(e.dir, key, quietLog()); err != nil {
			t.Fatal(err)
		}
		e.out = NewOutbox(e.cache, quietLog())
		if e.plain, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if e.tlsL, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		edges[i] = e
	}
	a, b := edges[0], edges[1]
	// Pebble validates at b only.
	httpPort, tlsPort := b.plain.Addr().(*net.TCPAddr).Port, b.tlsL.Addr().(*net.TCPAddr).Port
	if challenge == "http-01" {
		tlsPort = testcluster.FreePort(t, netip.MustParseAddr("127.0.0.1"))
	} else {
		httpPort = testcluster.FreePort(t, netip.MustParseAddr("127.0.0.1"))
	}
	pb := startPebble(t, httpPort, tlsPort, 3600)

	bk := newBackends()
	bk.set("web", 80, serveBackend(t, named("web")))
	var carried [2]chan struct{}
	for _, e := range edges {
		var err error
		e.srv, err = New(Config{Dial: bk.Dial, Logger: quietLog(), ACME: &ACME{DirectoryURL: pb.dir, HTTPClient: pb.client, Cache: e.cache}})
		if err != nil {
			t.Fatal(err)
		}
		go e.srv.Serve(e.plain)
		go e.srv.ServeTLS(e.tlsL)
		if err := e.srv.SetTable(Table{Routes: []Route{{Host: host, App: "web", Port: 80}}, TLS: []TLSHost{{Host: host, ACME: true}}}); err != nil {
			t.Fatal(err)
		}
	}
	h := &hub{claims: map[string]hubClaim{}}
	for i := range edges {
		carried[i] = make(chan struct{})
		go func() { defer close(carried[i]); h.carry(ctx, t, i, edges[i].out, []*Cache{a.cache, b.cache}) }()
	}
	t.Cleanup(func() {
		cancel()
		for i, e := range edges {
			<-carried[i]
			e.srv.Close()
		}
	})

	// Both carried before the first handshake: claims and challenges are
	// waited for only when a master pulls.
	for deadline := time.Now().Add(5 * time.Second); !a.out.carried() || !b.out.carried(); {
		if time.Now().After(deadline) {
			t.Fatal("the carriers never pulled")
		}
		time.Sleep(time.Millisecond) // polling the carriers' start, with a deadline
	}

	t0 := time.Now()
	var leafA *x509.Certificate
	if both {
		// The first handshakes reach both edges at once: one orders, the
		// other waits for its certificate.
		done := make(chan *x509.Certificate)
		go func() { done <- edgeCert(t, b.tlsL.Addr().String(), host, pb.root) }()
		leafA = edgeCert(t, a.tlsL.Addr().String(), host, pb.root)
		leafB := <-done
		if !bytes.Equal(leafA.Raw, leafB.Raw) {
			t.Fatalf("handshakes at once: a serves serial %x, b serial %x: both ordered", leafA.SerialNumber, leafB.SerialNumber)
		}
		t.Logf("%s, both at once: one certificate, serial %x, in %v", challenge, leafA.SerialNumber, time.Since(t0).Round(time.Millisecond))
		return
	}
	leafA = edgeCert(t, a.tlsL.Addr().String(), host, pb.root)
	t.Logf("%s: issued through a, validated at b, in %v", challenge, time.Since(t0).Round(time.Millisecond))
	// The certificate goes to b asynchronously: wait for it there.
	for deadline := time.Now().Add(10 * time.Second); ; {
		x, _ := os.ReadFile(a.cache.path(host))
		y, _ := os.ReadFile(b.cache.path(host))
		if len(x) > 0 && bytes.Equal(x, y) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the certificate did not reach b")
		}
		time.Sleep(5 * time.Millisecond) // polling the asynchronous copy, with a deadline
	}
	leafB := edgeCert(t, b.tlsL.Addr().String(), host, pb.root)
	if !bytes.Equal(leafA.Raw, leafB.Raw) {
		t.Errorf("a serves serial %x, b serial %x: want one certificate", leafA.SerialNumber, leafB.SerialNumber)
	}
}
