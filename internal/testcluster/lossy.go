package testcluster

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Link describes a rented machine's link, as the relay shapes it: each
// chunk of bytes is delayed by Delay ± Jitter (in order: nothing overtakes
// what went before), and now and then (on average every StallEvery) the
// link stalls, both ways at once: nothing gets through for StallMin to
// StallMax.
type Link struct {
	Delay, Jitter      time.Duration
	StallEvery         time.Duration
	StallMin, StallMax time.Duration
	// FirstStall, if set, is when the first stall comes (after the relay
	// starts), so a short test is sure to see one; later ones are random.
	FirstStall time.Duration
}

// RentedLink is a rented machine's link: 150 ms ± 100 ms, and a 1–2 s
// stall about every 30 s. Packet loss comes from DropPackets.
var RentedLink = Link{Delay: 150 * time.Millisecond, Jitter: 100 * time.Millisecond,
	StallEvery: 30 * time.Second, StallMin: time.Second, StallMax: 2 * time.Second}

// Relay forwards TCP connections from a loopback port to target through a
// shaped Link. It runs in the test process; Addr is where to connect.
type Relay struct {
	Addr   string
	Stalls atomic.Int64 // stalls so far
	link   Link

	mu                    sync.Mutex
	stallUntil, nextStall time.Time
	target                string
	ln                    net.Listener
	done                  chan struct{}
	wg                    sync.WaitGroup
}

// NewRelay starts a relay to target (host:port), stopped at the test's end.
func NewRelay(t testing.TB, target string, link Link) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Addr: ln.Addr().String(), link: link, target: target, ln: ln, done: make(chan struct{})}
	r.nextStall = time.Now().Add(r.untilStall())
	if link.FirstStall > 0 {
		r.nextStall = time.Now().Add(link.FirstStall)
	}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() { close(r.done); ln.Close(); r.wg.Wait() })
	return r
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", r.target)
		if err != nil {
			in.Close()
			continue
		}
		r.wg.Add(2)
		go r.pump(in, out)
		go r.pump(out, in)
	}
}

// chunk is bytes to deliver at a time.
type chunk struct {
	b  []byte
	at time.Time
}

// pump shapes one direction: a reader stamps each chunk with when it may
// be delivered, a writer delivers it then.
func (r *Relay) pump(from, to net.Conn) {
	defer r.wg.Done()
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		var last time.Time
		for {
			buf := make([]byte, 32<<10)
			n, err := from.Read(buf)
			if n > 0 {
				now := time.Now()
				at := now.Add(r.link.Delay - r.link.Jitter + time.Duration(rand.Int64N(int64(2*r.link.Jitter)+1)))
				at = latest(at, last, r.stalledUntil(now))
				last = at
				select {
				case q <- chunk{buf[:n], at}:
				case <-r.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer from.Close()
	defer to.Close()
	for c := range q {
		select {
		case <-time.After(time.Until(c.at)):
		case <-r.done:
			return
		}
		if _, err := to.Write(c.b); err != nil {
			io.Copy(io.Discard, from)
			return
		}
	}
	if tc, ok := to.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// stalledUntil is when the link's current stall ends (zero if none),
// starting the next stall when its time has come.
func (r *Relay) stalledUntil(now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.link.StallEvery > 0 && now.After(r.nextStall) {
		r.stallUntil = now.Add(r.link.StallMin + time.Duration(rand.Int64N(int64(r.link.StallMax-r.link.StallMin)+1)))
		r.nextStall = r.stallUntil.Add(r.untilStall())
		r.Stalls.Add(1)
	}
	return r.stallUntil
}

// untilStall is how long until the next stall: exponential, about
// StallEvery on average.
func (r *Relay) untilStall() time.Duration {
	if r.link.StallEvery <= 0 {
		return time.Duration(1 << 62)
	}
	return time.Duration(rand.ExpFloat64() * float64(r.link.StallEvery))
}

func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}
