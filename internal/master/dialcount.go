package master

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
)

// dialCounts counts, per replica, the connections the master has open
// through dial and those it is opening, which balanceOrder weighs. The
// zero value is ready to use; it is safe for concurrent use.
type dialCounts struct {
	mu   sync.Mutex
	open map[string]int // replica → connections; no entry when none
	rnd  *rand.Rand
}

// order is the order to try targets in (the pool balanced, then the
// leaving ones), and counts a connection being opened to the first: the
// choice and the count are one step, so dials arriving together spread
// instead of all picking the same replica.
func (d *dialCounts) order(pool, leaving []dialTarget) []dialTarget {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rnd == nil {
		d.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	out := append(balanceOrder(pool, d.open, d.rnd), balanceOrder(leaving, d.open, d.rnd)...)
	if len(out) > 0 {
		d.addLocked(out[0].ID, 1)
	}
	return out
}

// add changes a replica's count by n.
func (d *dialCounts) add(id string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addLocked(id, n)
}

func (d *dialCounts) addLocked(id string, n int) {
	if d.open == nil {
		d.open = map[string]int{}
	}
	if d.open[id] += n; d.open[id] <= 0 {
		delete(d.open, id) // replicas come and go: keep no entry for those without connections
	}
}

// count is a replica's count.
func (d *dialCounts) count(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.open[id]
}

// held wraps a connection to a replica, already counted, so that closing
// it takes it off the count, once however often and from however many
// goroutines it is closed.
func (d *dialCounts) held(conn net.Conn, id string) net.Conn {
	return &countedConn{Conn: conn, done: func() { d.add(id, -1) }}
}

// countedConn is a connection whose first Close runs done.
type countedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}

// CloseWrite passes a half-close on (the end of a dial's input), which
// embedding alone would hide from those who look for it.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
