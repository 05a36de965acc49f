package edge

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// The edge's own pool of upstream connections, for the lean path
// (forward.go): a request borrows a connection, writes and reads on it in
// its own goroutine, and gives it back once the answer's body is read to
// its end. net/http's Transport, kept for what the lean path does not
// take, runs two goroutines per connection and hands every request and
// answer between them and the handler; on a two-core machine those
// hand-offs cost more than the proxying itself.

const (
	// maxIdlePerKey bounds the idle connections kept per pool key, as the
	// Transport's MaxIdleConnsPerHost did.
	maxIdlePerKey = 256
	// idleTimeout closes connections idle that long, as the Transport's
	// IdleConnTimeout did; sweepEvery is how often that is looked at.
	idleTimeout = 90 * time.Second
	sweepEvery  = 30 * time.Second
)

// upConn is one upstream connection, with the reader its answers are
// parsed from (answers are never read past their end, so what is buffered
// belongs to the next one, if anything).
type upConn struct {
	conn   net.Conn
	br     *bufio.Reader // reads through head
	head   headLimit
	pool   *connPool
	key    string
	idle   time.Time // when it was put back
	reused bool      // it carried a request before this one
	// abort makes blocked reads and writes fail at once: the client went
	// away. Made once per connection, not per request.
	abort func()
}

func (c *upConn) close() { c.conn.Close() }

// maxAnswerHead bounds what is read of the connection while an answer's
// head is parsed, as the Transport's MaxResponseHeaderBytes does: an app
// sending headers without end must not take the edge's memory.
const maxAnswerHead = 1 << 20

// headLimit is the connection as its reader sees it: while left is not
// negative, at most left more bytes.
type headLimit struct {
	net.Conn
	left int
}

var errHeadTooLarge = errors.New("the answer's head is larger than 1 MiB")

func (h *headLimit) Read(b []byte) (int, error) {
	if h.left < 0 {
		return h.Conn.Read(b)
	}
	if h.left == 0 {
		return 0, errHeadTooLarge
	}
	n, err := h.Conn.Read(b[:min(len(b), h.left)])
	h.left -= n
	return n, err
}

// connPool holds idle upstream connections by key (the route's synthetic
// upstream host: one key per app:port, and per client connection for
// routes with PROXY headers). CloseIdleUpstreams retires a pool whole:
// its idle connections are closed, and those in use are closed when they
// come back.
type connPool struct {
	mu       sync.Mutex
	idle     map[string][]*upConn
	closed   bool
	sweeping bool
}

func newConnPool() *connPool { return &connPool{idle: map[string][]*upConn{}} }

// get takes the most recently used idle connection for key, or nil.
func (p *connPool) get(key string) *upConn {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[key]
	for len(list) > 0 {
		c := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		if now.Sub(c.idle) < idleTimeout {
			p.setList(key, list)
			c.reused = true
			return c
		}
		c.close()
	}
	p.setList(key, list)
	return nil
}

func (p *connPool) setList(key string, list []*upConn) {
	if len(list) == 0 {
		delete(p.idle, key)
		return
	}
	p.idle[key] = list
}

// put gives a connection back after an answer read to its end. A retired
// pool, or a full one, closes it instead.
func (p *connPool) put(c *upConn) {
	c.idle = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle[c.key]) >= maxIdlePerKey {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle[c.key] = append(p.idle[c.key], c)
	if !p.sweeping {
		p.sweeping = true
		time.AfterFunc(sweepEvery, p.sweep)
	}
	p.mu.Unlock()
}

// sweep closes connections idle longer than idleTimeout, and comes back
// while the pool holds any (a pool that is empty costs no timer).
func (p *connPool) sweep() {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, list := range p.idle {
		// Oldest first: put appends.
		n := 0
		for n < len(list) && now.Sub(list[n].idle) >= idleTimeout {
			list[n].close()
			n++
		}
		if n > 0 {
			p.setList(key, append(list[:0], list[n:]...))
		}
	}
	p.sweeping = len(p.idle) > 0 && !p.closed
	if p.sweeping {
		time.AfterFunc(sweepEvery, p.sweep)
	}
}

// retire closes the idle connections and makes put close the others.
func (p *connPool) retire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for key, list := range p.idle {
		for _, c := range list {
			c.close()
		}
		delete(p.idle, key)
	}
}

// netConner is a connection wrapping another (tls.Conn has the method;
// the node daemon's upstream connections too), which the liveness check
// looks through to reach a socket.
type netConner interface{ NetConn() net.Conn }

// peerClosed says whether an idle connection's peer has closed it (or
// sent something unasked, which makes it unusable too: where the last
// answer ended is in doubt), without waiting: apps close idle keep-alive
// connections on their own timeouts, and a request sent on such a
// connection fails, which a request that cannot be sent twice must not
// risk. The Transport learns it from the
// goroutine it keeps reading every idle connection; here it is one
// non-blocking peek, for sockets. For other connections (streams over
// SSH) an expired read deadline makes the read answer at once.
func peerClosed(c *upConn) bool {
	if c.br.Buffered() > 0 {
		return true
	}
	conn := c.conn
	for {
		if sc, ok := conn.(syscall.Conn); ok {
			return socketClosed(sc)
		}
		nc, ok := conn.(netConner)
		if !ok {
			break
		}
		conn = nc.NetConn()
	}
	if err := c.conn.SetReadDeadline(aLongTimeAgo); err != nil {
		return true
	}
	_, err := c.br.Peek(1)
	c.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// socketClosed peeks at a socket without blocking: EAGAIN means open and
// quiet.
func socketClosed(sc syscall.Conn) bool {
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := true
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = !errors.Is(err, syscall.EAGAIN)
		return true
	})
	return err != nil || closed
}

// aLongTimeAgo is a deadline that makes reads and writes fail at once.
var aLongTimeAgo = time.Unix(1, 0)
