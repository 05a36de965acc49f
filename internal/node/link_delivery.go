package node

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/sshx"
)

// An edge upstream connection says whether the request it carried last
// surely never reached the replica (Undelivered), so the proxy may send it
// to another one. Over SSH that is known only when the replica's node was
// found dead and its kernel acknowledged none of the request's bytes, sent
// when a live node would have been heard (sshx.Delivery). A connection to
// a replica on this node never says so: a replica dying under it may have
// done the request.

// delivery is what an upstream connection over SSH asks of its SSH
// connection: an sshx.Delivery, or a test's stand-in.
type delivery interface {
	Written() int64
	Undelivered(from int64, at time.Time) bool
}

// requestMark follows the HTTP/1.1 requests written on a connection: a
// request begins with the first write after an answer was read (and with
// the first write of all), and lies in the SSH connection's bytes from the
// offset it had then.
type requestMark struct {
	deliv delivery // nil: not over SSH

	mu      sync.Mutex
	begun   bool      // a request was written
	reading bool      // bytes were read since the last write
	status  []byte    // the first bytes read since the last write
	from    int64     // where the last request's bytes begin
	at      time.Time // when they began
}

func newRequestMark(conn net.Conn) *requestMark {
	m := &requestMark{}
	if d := sshx.DeliveryOf(conn.LocalAddr()); d != nil {
		m.deliv = d
	}
	return m
}

// statusLen is as much of an answer as says whether it is final:
// "HTTP/1.1 200".
const statusLen = len("HTTP/1.1 200")

func (m *requestMark) read(b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.reading {
		m.reading = true
		m.status = m.status[:0]
	}
	if need := statusLen - len(m.status); need > 0 {
		m.status = append(m.status, b[:min(need, len(b))]...)
	}
}

func (m *requestMark) write(b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// After an interim answer (100 Continue, 101 Switching Protocols)
	// the same request goes on; after anything not surely a final
	// answer, the bytes count as the same request's too, whose start is
	// earlier: more of them must be unacknowledged for it to be
	// undelivered. So do bytes that do not open with a request line:
	// the rest of a body the replica answered early (413, or 200 before
	// reading it all), written after its answer was read.
	if !m.begun || (m.reading && finalStatus(m.status) && requestLine(b)) {
		m.begun, m.from, m.at = true, m.deliv.Written(), time.Now()
	}
	m.reading = false
}

// finalStatus says whether b begins an HTTP/1.x status line with a final
// (2xx to 5xx) code.
func finalStatus(b []byte) bool {
	return len(b) >= statusLen && bytes.HasPrefix(b, []byte("HTTP/1.")) && b[8] == ' ' && b[9] >= '2' && b[9] <= '5'
}

// requestLine says whether b opens like an HTTP/1.x request, as Go's
// Transport writes each: a method (a token) and a space.
func requestLine(b []byte) bool {
	for i, c := range b[:min(len(b), 32)] {
		switch {
		case c == ' ':
			return i > 0
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return false
}

func (m *requestMark) undelivered() bool {
	if m.deliv == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.begun && m.deliv.Undelivered(m.from, m.at)
}

func (c *edgeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.mark.deliv != nil {
		c.mark.read(b[:n])
	}
	return n, err
}

func (c *edgeConn) Write(b []byte) (int, error) {
	if c.mark.deliv != nil {
		c.mark.write(b)
	}
	return c.Conn.Write(b)
}

// Undelivered says whether the last request written on c surely never
// reached the replica: its node was found dead before any byte of it
// arrived. The edge then sends it again elsewhere.
func (c *edgeConn) Undelivered() bool { return c.mark.undelivered() }
