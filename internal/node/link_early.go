package node

import (
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// earlyMax bounds what a connection's client may send before an endpoint
// takes the connection: beyond it, the client waits for the answer.
const earlyMax = 16 << 10

// early is what a link connection's client sent before an endpoint took
// the connection. It goes to each endpoint tried, with the opening, so a
// refusal loses none of it; and it goes at once, not a round trip later
// after the gate's answer: most clients speak first (HTTP, PostgreSQL,
// Redis), and their request then travels with the stream's opening.
type early struct {
	client net.Conn // nil: nothing more is read before an endpoint answers
	buf    []byte
}

// during runs wait (the wait for a remote endpoint's answer) while what
// more the client sends, up to earlyMax in all, goes on the stream and
// into buf. Reading stops when wait returns (a past deadline ends the
// read, which consumes nothing), at the client's end (the relay reads it
// again) or on an error (the relay sees it too).
func (e *early) during(st io.Writer, wait func() error) error {
	if e.client == nil || len(e.buf) >= earlyMax {
		return wait()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tmp := make([]byte, earlyMax-len(e.buf))
		for len(e.buf) < earlyMax {
			n, err := e.client.Read(tmp[:earlyMax-len(e.buf)])
			if n > 0 {
				e.buf = append(e.buf, tmp[:n]...)
				if _, werr := st.Write(tmp[:n]); werr != nil {
					return // kept in buf for the next endpoint
				}
			}
			if err != nil {
				return
			}
		}
	}()
	err := wait()
	e.client.SetReadDeadline(time.Unix(1, 0))
	<-done
	e.client.SetReadDeadline(time.Time{})
	return err
}

// sentAlready is what the client has sent by now, read without waiting
// (nil if nothing yet): it goes in the same frame as the opening line.
func sentAlready(c net.Conn) []byte {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	buf := make([]byte, earlyMax)
	n := 0
	raw.Read(func(fd uintptr) bool {
		n, err = unix.Read(int(fd), buf) // EAGAIN: nothing yet; 0: the client's end, read again later
		return true                      // one try, no waiting
	})
	if err != nil || n <= 0 {
		return nil
	}
	return buf[:n:n]
}
