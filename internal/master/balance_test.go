package master_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

// TestBalanceDialSpread: connections held open through moat dial spread
// evenly over an app's replicas, and a replica whose connections close
// takes the next ones: the master counts what it holds, and forgets what
// was closed.
func TestBalanceDialSpread(t *testing.T) {
	e := newEnv(t, 3)
	r := e.deploy(spec("web", 3))
	e.wait("web", r.Revision)
	reps := e.waitReplicas("web", "3 ready", 30*time.Second, func(reps []masterapi.Replica) bool {
		n, _ := ready(reps)
		return n == 3
	})
	byReplica := map[string][]*heldConn{}
	for _, rep := range reps {
		byReplica[rep.ID] = nil
	}
	t.Cleanup(func() {
		for _, cs := range byReplica {
			for _, c := range cs {
				c.Close()
			}
		}
	})
	hold := func(c *heldConn) {
		if _, ok := byReplica[c.host]; !ok {
			t.Fatalf("a connection reached %q, not a replica of web (%v)", c.host, reps)
		}
		byReplica[c.host] = append(byReplica[c.host], c)
	}
	spread := func() map[string]int {
		out := map[string]int{}
		for id, cs := range byReplica {
			out[id] = len(cs)
		}
		return out
	}

	// Connections one after another, then as many all at once: 6 per
	// replica, as each is a session on the master's one SSH connection to
	// its node, where sshd allows 10 (MaxSessions) and rpc takes one or two.
	const n = 18
	for range n / 2 {
		hold(e.holdConn("web", 8080))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var conns []*heldConn
	for range n / 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := e.tryHoldConn("web", 8080)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	for _, c := range conns {
		hold(c)
	}
	if t.Failed() {
		t.FailNow()
	}
	for id, got := range spread() {
		if got < n/3-1 || got > n/3+1 {
			t.Errorf("%d held connections over 3 replicas: %v, replica %s outside %d±1", n, spread(), id, n/3)
		}
	}
	t.Logf("%d held connections: %v", n, spread())

	// Close one replica's connections, each to its end: the next ones go
	// to it until it holds as many as the others.
	var emptied string
	for id := range byReplica {
		emptied = id
		break
	}
	closed := len(byReplica[emptied])
	for _, c := range byReplica[emptied] {
		c.finish(t)
	}
	byReplica[emptied] = nil
	for range closed {
		c := e.holdConn("web", 8080)
		hold(c)
		if c.host != emptied {
			t.Errorf("after %s's %d connections closed, a new one went to %s: %v", emptied, closed, c.host, spread())
		}
	}
	t.Logf("after replacing %s's connections: %v", emptied, spread())
}

// heldConn is a connection through moat dial that has answered a request
// and is kept open (HTTP/1.1 keep-alive).
type heldConn struct {
	io.ReadWriteCloser
	br   *bufio.Reader
	host string // the replica that answered (the probe's hostname)
}

// holdConn dials the app, sends a request and keeps the connection.
func (e *env) holdConn(app string, port int) *heldConn {
	e.t.Helper()
	c, err := e.tryHoldConn(app, port)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) tryHoldConn(app string, port int) (*heldConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := e.m.Client.DialApp(ctx, app, port)
	if err != nil {
		return nil, fmt.Errorf("dial %s:%d: %w", app, port, err)
	}
	c := &heldConn{ReadWriteCloser: conn, br: bufio.NewReader(conn)}
	body, err := c.request(ctx, "")
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.host = strings.TrimSpace(strings.TrimPrefix(body, "probe "))
	return c, nil
}

// request sends GET / (with extra headers) and returns the body, giving
// up (and closing the connection) when ctx ends.
func (c *heldConn) request(ctx context.Context, extra string) (string, error) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: web\r\n%s\r\n", extra); err != nil {
		return "", fmt.Errorf("send a request: %w", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return "", fmt.Errorf("read the answer: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("answer %s %q: %v", resp.Status, body, err)
	}
	return string(body), nil
}

// finish ends the connection from the server's side, as a client done
// with it would (Connection: close), and waits for the end, so that the
// master has seen it end too.
func (c *heldConn) finish(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.request(ctx, "Connection: close\r\n"); err != nil {
		t.Fatalf("last request to %s: %v", c.host, err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if rest, err := io.ReadAll(c.br); err != nil || len(rest) != 0 || ctx.Err() != nil {
		t.Fatalf("%s: after its last answer: %q, %v (%v)", c.host, rest, err, ctx.Err())
	}
	c.Close()
}
