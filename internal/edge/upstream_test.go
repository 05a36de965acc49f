package edge

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestConnPool: connections come back most recent first, per key; those
// idle past idleTimeout are closed (by get and by the sweep); a retired
// pool closes its idle connections and those given back later.
func TestConnPool(t *testing.T) {
	mk := func(p *connPool, key string) *upConn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return &upConn{conn: a, br: bufio.NewReader(a), pool: p, key: key}
	}
	// A pipe nobody reads: a write times out if it is open, fails at
	// once if it is closed.
	isClosed := func(c *upConn) bool {
		c.conn.SetWriteDeadline(time.Now().Add(time.Millisecond))
		_, err := c.conn.Write([]byte{0})
		ne, timeout := err.(net.Error)
		return err != nil && !(timeout && ne.Timeout())
	}
	p := newConnPool()
	a, b, other := mk(p, "k"), mk(p, "k"), mk(p, "j")
	p.put(a)
	p.put(b)
	p.put(other)
	if got := p.get("k"); got != b || !got.reused {
		t.Fatalf("get: %p, want the most recent (%p), reused", got, b)
	}
	p.put(b)

	// Idle too long: get skips and closes it; the sweep closes the rest.
	b.idle = time.Now().Add(-idleTimeout)
	if got := p.get("k"); got != a {
		t.Fatalf("get: %p, want the one not idle too long (%p)", got, a)
	}
	if !isClosed(b) {
		t.Error("a connection idle past idleTimeout was not closed")
	}
	if got := p.get("k"); got != nil {
		t.Fatalf("get from an empty key: %p", got)
	}
	other.idle = time.Now().Add(-idleTimeout)
	p.sweep()
	if !isClosed(other) || p.get("j") != nil {
		t.Error("the sweep left a connection idle past idleTimeout")
	}

	// Retired: idle ones closed now, busy ones when they come back.
	c := mk(p, "k")
	p.put(c)
	p.retire()
	if !isClosed(c) {
		t.Error("retire left an idle connection open")
	}
	p.put(a)
	if !isClosed(a) {
		t.Error("a connection given back to a retired pool was kept")
	}
}
