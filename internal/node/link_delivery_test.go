package node

import (
	"net"
	"testing"
	"time"
)

// fakeDelivery stands for an SSH connection: written is its count, and
// its node's kernel acknowledged acked bytes before the node died.
type fakeDelivery struct {
	written, acked int64
	dead           bool
}

func (f *fakeDelivery) Written() int64 { return f.written }
func (f *fakeDelivery) Undelivered(from int64, _ time.Time) bool {
	return f.dead && f.acked <= from
}

// scriptConn answers reads from a script and takes every write.
type scriptConn struct {
	net.Conn
	reads []string
}

func (c *scriptConn) Read(b []byte) (int, error) {
	n := copy(b, c.reads[0])
	c.reads = c.reads[1:]
	return n, nil
}

func (c *scriptConn) Write(b []byte) (int, error) { return len(b), nil }

// TestEdgeConnUndelivered: a request begins at the first write after a
// final answer was read (not after 100 Continue, nor after too little of
// an answer to tell), and is undelivered when its node's kernel
// acknowledged none of the SSH connection's bytes from its start on.
func TestEdgeConnUndelivered(t *testing.T) {
	d := &fakeDelivery{}
	sc := &scriptConn{}
	c := &edgeConn{Conn: sc, mark: &requestMark{deliv: d}}
	if c.Undelivered() {
		t.Fatal("undelivered before any request")
	}
	step := func(written int64, answer string) {
		t.Helper()
		d.written = written
		if _, err := c.Write([]byte("POST / HTTP/1.1\r\n")); err != nil {
			t.Fatal(err)
		}
		if answer != "" {
			sc.reads = append(sc.reads, answer)
			if _, err := c.Read(make([]byte, 64)); err != nil {
				t.Fatal(err)
			}
		}
	}
	step(100, "HTTP/1.1 100 Continue\r\n\r\n")        // request 1's head, and its go-ahead
	step(150, "HTTP/1.1 200 OK\r\nContent-Length: 0") // its body: the same request
	step(400, "HTT")                                  // request 2, answered in bits
	step(450, "")                                     // not known to be a new request: still 2
	d.dead = true
	// Request 2 began at 400 (not 450, nor 150): a byte from 400 on
	// acknowledged leaves it maybe delivered; none, undelivered.
	for _, tc := range []struct {
		acked int64
		want  bool
	}{{420, false}, {400, true}, {10, true}} {
		d.acked = tc.acked
		if got := c.Undelivered(); got != tc.want {
			t.Errorf("request from 400, acked %d: undelivered %v, want %v", tc.acked, got, tc.want)
		}
	}
	// Request 1 began at 100: its body's bytes (from 150) unacknowledged
	// do not make it undelivered.
	d2 := &fakeDelivery{dead: true, acked: 120}
	sc2 := &scriptConn{}
	c2 := &edgeConn{Conn: sc2, mark: &requestMark{deliv: d2}}
	d2.written = 100
	c2.Write([]byte("head"))
	sc2.reads = []string{"HTTP/1.1 100 Continue\r\n\r\n"}
	c2.Read(make([]byte, 64))
	d2.written = 150
	c2.Write([]byte("body"))
	if c2.Undelivered() {
		t.Error("a request whose head was acknowledged is undelivered after 100 Continue")
	}

	// The rest of a body written after an early final answer (413, or
	// 200 before the replica read it all) is the same request's, not a
	// new one: its head, acknowledged, leaves it maybe delivered.
	d3 := &fakeDelivery{dead: true, acked: 120}
	sc3 := &scriptConn{}
	c3 := &edgeConn{Conn: sc3, mark: &requestMark{deliv: d3}}
	d3.written = 100
	c3.Write([]byte("PUT /x HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"))
	sc3.reads = []string{"HTTP/1.1 413 Content Too Large\r\n"}
	c3.Read(make([]byte, 64))
	d3.written = 150
	c3.Write([]byte("\x00\x01 body bytes"))
	if c3.Undelivered() {
		t.Error("a request whose head was acknowledged is undelivered after an early answer")
	}
	// The next request does begin after it.
	sc3.reads = []string{"HTTP/1.1 200 OK\r\n"}
	c3.Read(make([]byte, 64))
	d3.written = 200
	c3.Write([]byte("GET / HTTP/1.1\r\n"))
	if !c3.Undelivered() {
		t.Error("a new request after a final answer, none of it acknowledged, is not undelivered")
	}

	// Not over SSH: never undelivered.
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	local := &edgeConn{Conn: a, mark: newRequestMark(a)}
	go b.Read(make([]byte, 8))
	local.Write([]byte("GET"))
	if local.mark.deliv != nil || local.Undelivered() {
		t.Error("a local connection may say undelivered")
	}
}
