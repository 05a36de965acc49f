package sshx

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestHandshakeCap: however many nodes (re)connect at once, at most
// MaxHandshakes handshakes are in flight (sshd's MaxStartups drops bursts).
func TestHandshakeCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Never answer: every handshake hangs until its deadline.
			go func() {
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool := NewPool(Config{Signer: signer, MaxHandshakes: 2, DialTimeout: 200 * time.Millisecond})
	defer pool.Close()
	var open, peak, total atomic.Int64
	dial := pool.dial
	pool.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		n := open.Add(1)
		total.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		return &countedConn{Conn: conn, open: &open}, nil
	}
	for i := range 8 {
		pool.Add(Target{Name: string(rune('a' + i)), Addr: ln.Addr().String(), User: "root", HostKey: signer.PublicKey()})
	}
	deadline := time.Now().Add(20 * time.Second)
	for total.Load() < 16 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d connection attempts", total.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("%d handshakes at once at the peak, want the cap, 2", p)
	}
}

type countedConn struct {
	net.Conn
	open   *atomic.Int64
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.open.Add(-1)
	}
	return c.Conn.Close()
}
