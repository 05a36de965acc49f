package sshx_test

import (
	"context"
	"testing"
	"time"
)

// TestSessionCloseDuringWrite: a session closed by one goroutine while
// another writes to it (an HTTP client's read loop ending the connection
// under its write loop) ends the write, without a data race (run with
// -race) and without waiting for it.
func TestSessionCloseDuringWrite(t *testing.T) {
	_, _, conn := upNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 5 {
		sess, err := conn.Open(ctx, "rpc")
		if err != nil {
			t.Fatal(err)
		}
		// A request whose headers never end: the node reads on.
		if _, err := sess.Write([]byte("GET /ping HTTP/1.1\r\nHost: n\r\nX-Long: ")); err != nil {
			t.Fatal(err)
		}
		wrote := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				if _, err := sess.Write([]byte("aaaaaaaa")); err != nil {
					return
				}
				if i == 10 {
					close(wrote)
				}
			}
		}()
		select {
		case <-wrote:
		case <-done:
			t.Fatal("the writes failed before the close")
		case <-ctx.Done():
			t.Fatal("the writes never went through")
		}
		sess.Close()
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatal("a write went on after the session closed")
		}
	}
}
