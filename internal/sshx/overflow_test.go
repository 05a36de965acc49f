package sshx_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestMoreSessionsThanMaxSessions: sshd allows 10 sessions per connection
// (MaxSessions); 25 sessions held open at once to one node each work,
// the ones past the limit on more connections, which close with their
// last session.
func TestMoreSessionsThanMaxSessions(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.Install("n1")
	pool := sshx.NewPool(sshx.Config{Signer: c.MasterKey})
	defer pool.Close()
	conn := pool.Add(c.Target("n1"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := conn.NodeAPI().Ping(ctx); err != nil {
		t.Fatal(err)
	}
	const held = 25
	var sessions []net.Conn
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	for i := range held {
		s, err := conn.Open(ctx, "rpc")
		if err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
		sessions = append(sessions, s)
		if err := ping(s); err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
	}
	if n := conn.Connections(); n < 3 {
		t.Errorf("%d sessions held on %d connections; sshd allows 10 per connection", held, n)
	}
	// Each still works with all of them open.
	for i, s := range sessions {
		if err := ping(s); err != nil {
			t.Errorf("session %d, with %d open: %v", i+1, held, err)
		}
	}
	for _, s := range sessions {
		s.Close()
	}
	sessions = nil
	for deadline := time.Now().Add(10 * time.Second); conn.Connections() != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections once every session closed, want the held one", conn.Connections())
		}
	}
	if err := conn.NodeAPI().Ping(ctx); err != nil {
		t.Errorf("the held connection after the others closed: %v", err)
	}
}

// ping sends one HTTP/1.1 request for the node's ping on an rpc session
// and reads the answer's status line.
func ping(s net.Conn) error {
	if _, err := io.WriteString(s, "GET /v1/ping HTTP/1.1\r\nHost: node\r\n\r\n"); err != nil {
		return err
	}
	r := bufio.NewReader(s)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "HTTP/1.1 200") {
		return &statusError{line}
	}
	// The rest of the answer: headers, then a body of Content-Length.
	length := 0
	for {
		h, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if h == "\r\n" {
			break
		}
		if v, ok := strings.CutPrefix(strings.ToLower(h), "content-length: "); ok {
			for _, ch := range strings.TrimSpace(v) {
				length = length*10 + int(ch-'0')
			}
		}
	}
	_, err = io.CopyN(io.Discard, r, int64(length))
	return err
}

type statusError struct{ line string }

func (e *statusError) Error() string { return "answer: " + strings.TrimSpace(e.line) }
