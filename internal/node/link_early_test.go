package node

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLinkSentAlready: the client's first bytes are taken without
// waiting: nothing when it has sent nothing (or only its end), what it
// sent when it has, up to earlyMax, the rest left for the relay.
func TestLinkSentAlready(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func() (client, served net.Conn) {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		served, err = ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close(); served.Close() })
		served.SetDeadline(time.Now().Add(10 * time.Second))
		return client, served
	}
	// Sent bytes are in the socket once a blocking read could see them:
	// poll sentAlready itself, as nothing else tells when they arrive.
	eventually := func(c net.Conn) []byte {
		deadline := time.Now().Add(5 * time.Second)
		for {
			if b := sentAlready(c); b != nil || time.Now().After(deadline) {
				return b
			}
			time.Sleep(time.Millisecond)
		}
	}

	_, quiet := pair()
	start := time.Now()
	if b := sentAlready(quiet); b != nil {
		t.Errorf("nothing sent: got %q", b)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("took %s with nothing sent; want no wait", d)
	}

	client, served := pair()
	client.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	if b := eventually(served); string(b) != "GET / HTTP/1.0\r\n\r\n" {
		t.Errorf("got %q; want the request", b)
	}

	client, served = pair()
	big := make([]byte, earlyMax+100)
	client.Write(big)
	client.(*net.TCPConn).CloseWrite()
	first := eventually(served)
	if len(first) == 0 || len(first) > earlyMax {
		t.Fatalf("took %d bytes; want 1 to %d", len(first), earlyMax)
	}
	rest := make([]byte, len(big))
	n := 0
	for n < len(big)-len(first) {
		m, err := served.Read(rest[n:])
		if err != nil {
			t.Fatalf("the rest after %d bytes: %v", n, err)
		}
		n += m
	}
	if _, err := served.Read(rest); err == nil {
		t.Error("no end after the rest")
	}

	client, served = pair()
	client.(*net.TCPConn).CloseWrite()
	finArrived(t, served)
	if b := sentAlready(served); b != nil {
		t.Errorf("only the client's end: got %q", b)
	}
	if _, err := served.Read(make([]byte, 1)); err == nil {
		t.Error("the client's end was lost")
	}
}

// finArrived polls, peeking, until the peer's end is readable on c.
func finArrived(t *testing.T, c net.Conn) {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := -1
		raw.Read(func(fd uintptr) bool {
			n, _, _ = unix.Recvfrom(int(fd), make([]byte, 1), unix.MSG_PEEK|unix.MSG_DONTWAIT)
			return true
		})
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the client's end not seen within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLinkEarlyDuring: while an endpoint's answer is awaited, what the
// client sends goes on the stream and is kept; once the answer is in,
// nothing more is read; past earlyMax the client waits.
func TestLinkEarlyDuring(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	served, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer served.Close()
	served.SetDeadline(time.Now().Add(10 * time.Second))

	e := &early{client: served, buf: []byte("GET")}
	var stream lockedBuffer
	answer := make(chan error)
	go func() {
		client.Write([]byte(" / HTTP/1.0\r\n\r\n"))
		// The answer comes once the request is on the stream.
		deadline := time.Now().Add(5 * time.Second)
		for stream.String() != " / HTTP/1.0\r\n\r\n" && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		answer <- nil
	}()
	if err := e.during(&stream, func() error { return <-answer }); err != nil {
		t.Fatal(err)
	}
	if string(e.buf) != "GET / HTTP/1.0\r\n\r\n" || stream.String() != " / HTTP/1.0\r\n\r\n" {
		t.Fatalf("kept %q, on the stream %q; want the request kept, its rest on the stream", e.buf, stream.String())
	}
	// After the answer, the client's next bytes are the relay's.
	client.Write([]byte("next"))
	b := make([]byte, 4)
	if _, err := io.ReadFull(served, b); err != nil || string(b) != "next" {
		t.Fatalf("after the answer read %q, %v; want next (the deadline cleared, nothing taken)", b, err)
	}

	// A client sending more than earlyMax: the rest waits for the relay.
	e = &early{client: served}
	var big lockedBuffer
	go client.Write(make([]byte, 2*earlyMax))
	if err := e.during(&big, func() error {
		deadline := time.Now().Add(5 * time.Second)
		for big.Len() < earlyMax && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(e.buf) != earlyMax || big.Len() != earlyMax {
		t.Fatalf("kept %d, on the stream %d; want %d each", len(e.buf), big.Len(), earlyMax)
	}
	rest := make([]byte, earlyMax)
	if _, err := io.ReadFull(served, rest); err != nil {
		t.Fatalf("the rest: %v", err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}
