package pipe_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/pipe"
)

// pair is a connected pair of loopback TCP connections.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// TestJoinHalfClose: the client's end of input reaches the server, whose
// answer still comes back; then both ends close.
func TestJoinHalfClose(t *testing.T) {
	client, a := pair(t)
	b, server := pair(t)
	done := make(chan [2]int64, 1)
	go func() {
		ab, ba := pipe.Join(a, b)
		done <- [2]int64{ab, ba}
	}()
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	client.Write([]byte("request"))
	client.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v", got, err)
	}
	server.Write([]byte("answer"))
	server.Close()
	got, err = io.ReadAll(client)
	if err != nil || string(got) != "answer" {
		t.Fatalf("client read %q, %v", got, err)
	}
	select {
	case n := <-done:
		if n != [2]int64{7, 6} {
			t.Errorf("counted %v, want [7 6]", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Join did not return")
	}
}

// TestJoinBrokenSideEndsBoth: a side that breaks ends the other at once.
func TestJoinBrokenSideEndsBoth(t *testing.T) {
	client, a := pair(t)
	b, server := pair(t)
	done := make(chan struct{})
	go func() { pipe.Join(a, b); close(done) }()
	server.(*net.TCPConn).SetLinger(0)
	server.Close() // RST
	client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(client); err != nil {
		t.Logf("client: %v", err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Join did not return")
	}
}
