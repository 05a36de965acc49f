package gate

import (
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestRelayEndsWhenTheFarSideCloses: the far side answers and closes
// while the client neither sends more nor ends its input (an HTTP/1.0
// request, then reading to the end). The relay must end, so that the gate
// exits and the session carries the end to the client.
func TestRelayEndsWhenTheFarSideCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err == nil {
			c.Write(append([]byte("got "), b...))
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// The session's pipes, as sshd gives them to the gate.
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inW.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	done := make(chan error, 1)
	go func() { done <- relay(sessionRW{inR, outW}, conn) }()
	inW.Write([]byte("hello"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("relay: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the relay still runs 10s after the far side closed")
	}
	outR.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(outR)
	if err != nil || string(b) != "got hello" {
		t.Fatalf("the client got %q, %v; want %q and its end", b, err, "got hello")
	}
}
