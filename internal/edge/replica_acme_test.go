package edge

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/testcluster"
)

// TestACMETwoEdges: two edges share a cache key, and their caches are
// carried to each other (as the master does). A client asks edge A, so A
// orders, but pebble validates at edge B, for each challenge type (the
// other type's port closed): the certificate is issued only if A's
// challenge was on B when the CA looked. B then serves A's certificate.
func TestACMETwoEdges(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) { testACMETwoEdges(t, challenge) })
	}
}

func testACMETwoEdges(t *testing.T, challenge string) {
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
	for i, e := range edges {
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
		carried[i] = make(chan struct{})
		other := edges[1-i].cache
		go func() { defer close(carried[i]); carry(ctx, t, e.out, other) }()
	}
	t.Cleanup(func() {
		cancel()
		for i, e := range edges {
			<-carried[i]
			e.srv.Close()
		}
	})

	t0 := time.Now()
	leafA := edgeCert(t, a.tlsL.Addr().String(), host, pb.root)
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
