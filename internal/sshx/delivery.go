package sshx

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Delivery tells, once a node is found dead, which of the bytes written to
// one of its SSH connections surely never reached it, so that a request
// they carried may go to another replica without being done twice.
//
// It counts the bytes written to the connection's TCP socket. When the
// node falls silent for DownAfter (a power cut, a link gone dark), it
// reads, before the socket is closed, how many of them the node's kernel
// never acknowledged (the send queue), and freezes acked = written − queued;
// the socket is then reset rather than closed, so the kernel drops the
// queue instead of delivering it should the node come back.
//
// A byte the node's kernel did not acknowledge may still have arrived: a
// kernel delays its ACKs (up to 200 ms on Linux) hoping to send them with
// data, and a node may die within that delay, after its app has done the
// request. So bytes count as undelivered only when also written late
// enough into the silence that a live node would have been heard first:
// the keepalive probe sent after two intervals of silence would have been
// answered (sureSilence); the silence counts from the last byte heard,
// or from when the keepalive watch last ran late, since a stalled master
// sent no probe (keepalive.Heard.SilentSince). Any doubt (no socket to ask, the connection
// closed for another reason than silence, a write under way when the
// queue is read) leaves the bytes counted as maybe delivered.
//
// Assumed: the node, or its link both ways, stopped as a whole, and a
// packet that left this host arrives within the margin or never. A node
// that goes on receiving while nothing it sends arrives (a one-way
// partition) could have bytes it never acknowledged; so could one whose
// packets wait somewhere and are delivered later, before the reset (a
// virtual machine paused, by live migration say, with its host queueing
// what comes for it, or seconds of buffering on the path).
type Delivery struct {
	sock   net.Conn // the TCP connection, for its send queue; nil if unknown
	margin time.Duration

	// pending counts bytes handed to the socket by writes under way,
	// written those the writes returned: what the kernel has taken is
	// never more than their sum (see freeze).
	pending, written atomic.Int64

	mu     sync.Mutex
	final  bool      // acked and silent are known, and will not change
	acked  int64     // never less than what the node's kernel acknowledged
	silent time.Time // the last sign of life from the node
}

// newDelivery counts what is written to sock, which the returned conn
// wraps. interval is the keepalive interval.
func newDelivery(sock net.Conn, interval time.Duration) (*Delivery, net.Conn) {
	d := &Delivery{sock: sock, margin: sureSilence(interval)}
	return d, writeCounter{Conn: sock, d: d}
}

// sureSilence is how long into a node's silence bytes must be written for
// a live node to have surely been heard before they arrived: a probe goes
// out once the connection has been quiet for an interval, at the next beat
// (so within two), and its answer needs a round trip and sshd's turn; 100
// ms covers those on a loaded node.
func sureSilence(interval time.Duration) time.Duration {
	return 2*interval + 100*time.Millisecond
}

// Written is how many bytes have been written to the connection so far.
// Bytes written to it later (a request's, say) lie beyond this offset.
func (d *Delivery) Written() int64 { return d.written.Load() }

// Acked is how many of the bytes written the node's kernel acknowledged
// (or a little more, never less), and whether that is final (the node was
// found dead and its socket asked). Not final: unknown, every byte may
// have arrived.
func (d *Delivery) Acked() (n int64, final bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acked, d.final
}

// Undelivered says whether the bytes written from offset from on, the
// first of them at time at or later, surely never reached the node: it was
// found dead, its kernel acknowledged none of them, and they were written
// when a live node would have been heard since it last was.
func (d *Delivery) Undelivered(from int64, at time.Time) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.final && d.acked <= from && !at.Before(d.silent.Add(d.margin))
}

// freeze reads how much the node's kernel acknowledged, given the node's
// last sign of life, and closes the socket with a reset (its queue
// dropped); the caller closes the SSH connection next. When the socket
// cannot say (see abort), nothing is final.
func (d *Delivery) freeze(lastHeard time.Time) {
	if d == nil || d.sock == nil {
		return
	}
	// What the kernel has taken (its write sequence) is at most pending
	// + written, read in this order after the queue: a write finishing
	// in between moves its count from one to the other, never out of
	// both. Overcounting it only makes acked larger: more bytes counted
	// as maybe delivered.
	queued, ok := abort(d.sock)
	if !ok {
		return
	}
	taken := d.pending.Load()
	taken += d.written.Load()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.final {
		return
	}
	d.acked, d.silent, d.final = max(taken-queued, 0), lastHeard, true
}

// writeCounter is the TCP connection under SSH, counting what it is given.
type writeCounter struct {
	net.Conn
	d *Delivery
}

func (c writeCounter) Write(b []byte) (int, error) {
	c.d.pending.Add(int64(len(b)))
	n, err := c.Conn.Write(b)
	c.d.written.Add(int64(n))
	c.d.pending.Add(-int64(len(b)))
	return n, err
}

// DeliveryOf is the Delivery of the SSH connection an address belongs to:
// a session's (Conn.Open, Dial) local address names the connection it
// rides on, and so do the streams of a mux over it (yamux passes its
// conn's addresses on). Nil for anything else, such as a local socket.
func DeliveryOf(a net.Addr) *Delivery {
	if s, ok := a.(sessionAddr); ok {
		return s.d
	}
	return nil
}

// sessionAddr is a session's address: the node's name, and the
// connection the session is on.
type sessionAddr struct {
	node string
	d    *Delivery
}

func (a sessionAddr) Network() string { return "ssh" }
func (a sessionAddr) String() string  { return a.node }
