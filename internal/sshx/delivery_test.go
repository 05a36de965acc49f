package sshx_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/sshx"
)

// TestDeliveryOnPowerOff: a node powered off (its link down first, so its
// kernel acknowledges nothing more) while rpc requests keep going to it.
// Once it is found dead, the count of bytes its kernel acknowledged is
// final: at least what preceded the last answered request, at most what
// was written before the power went, so no byte written after the stop
// counts as acknowledged; those bytes are undelivered, but only from when
// a live node would have been heard.
func TestDeliveryOnPowerOff(t *testing.T) {
	c, _, conn := upNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A session kept open is the handle on its connection's counts.
	sess, err := conn.Open(ctx, "rpc")
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	d := sshx.DeliveryOf(sess.LocalAddr())
	if d == nil {
		t.Fatal("a session's address gives no Delivery")
	}
	if _, final := d.Acked(); final {
		t.Fatal("acked is final on a live connection")
	}

	// Requests go on, one after the other, across the power cut.
	var mu sync.Mutex
	var answeredFrom int64 // Written() before the last request answered
	answered := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			before := d.Written()
			rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			err := conn.NodeAPI().Ping(rctx)
			rcancel()
			if err == nil {
				mu.Lock()
				answeredFrom = before
				answered++
				mu.Unlock()
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := answered
		mu.Unlock()
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rpcs answered within 10s, want 20", n)
		}
	}
	if err := c.StopNode("n1"); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	atStop := d.Written() // every byte written before the link went down
	waitState(t, conn, sshx.Down, 10*time.Second)
	acked, final := d.Acked()
	mu.Lock()
	lower := answeredFrom
	mu.Unlock()
	after := d.Written()
	t.Logf("written %d before the stop, %d in all; acknowledged %d (final %v); the last answered request began at %d", atStop, after, acked, final, lower)
	if !final {
		t.Fatal("acked not final once the node was found dead")
	}
	if acked < lower || acked > atStop {
		t.Errorf("acked %d, want between %d (before the last answer) and %d (written before the stop)", acked, lower, atStop)
	}
	if after <= atStop {
		t.Errorf("nothing written after the stop (%d): the test proves nothing about such bytes", after)
	}
	// Bytes from atStop on never arrived; from acked-1 on, one did.
	if !d.Undelivered(atStop, time.Now()) {
		t.Errorf("bytes written after the stop are not undelivered")
	}
	if d.Undelivered(acked-1, time.Now()) {
		t.Errorf("bytes from %d, one of them acknowledged, are undelivered", acked-1)
	}
	// Written right at the stop, before a live node would surely have
	// been heard: maybe delivered (an ACK may have been delayed).
	if d.Undelivered(atStop, stopped) {
		t.Errorf("bytes written at the stop are undelivered: a kernel delaying its ACK could have had them")
	}
}

// TestDeliveryNotFinalOnClose: a connection closed for another reason
// than the node's silence (here the pool lets it go) says nothing final:
// every byte may have arrived.
func TestDeliveryNotFinalOnClose(t *testing.T) {
	_, pool, conn := upNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := conn.Open(ctx, "rpc")
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	d := sshx.DeliveryOf(sess.LocalAddr())
	if err := conn.NodeAPI().Ping(ctx); err != nil {
		t.Fatal(err)
	}
	from := d.Written()
	pool.Remove("n1")
	if _, final := d.Acked(); final {
		t.Error("acked final on a connection closed by its owner")
	}
	if d.Undelivered(from, time.Now().Add(time.Hour)) {
		t.Error("bytes undelivered on a connection closed by its owner")
	}
	if sshx.DeliveryOf(&net.TCPAddr{}) != nil {
		t.Error("a TCP address gives a Delivery")
	}
}

// TestDeliveryOverflowOnPowerOff: a session past sshd's MaxSessions rides
// another connection, with counts of its own; when the node is found dead
// (by the held connection's keepalives), that connection's count is final
// too, and what was written on it after the stop is undelivered.
func TestDeliveryOverflowOnPowerOff(t *testing.T) {
	c, _, conn := upNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sessions []net.Conn
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	for i := range 12 {
		s, err := conn.Open(ctx, "rpc")
		if err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
		sessions = append(sessions, s)
		if err := ping(s); err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
	}
	held := sshx.DeliveryOf(sessions[0].LocalAddr())
	last := sessions[len(sessions)-1]
	d := sshx.DeliveryOf(last.LocalAddr())
	if d == nil || d == held {
		t.Fatalf("the 12th session's Delivery is %p, the first's %p: want one of its own", d, held)
	}
	// A request answered: everything written before it arrived.
	answered := d.Written()
	if err := ping(last); err != nil {
		t.Fatal(err)
	}
	if err := c.StopNode("n1"); err != nil {
		t.Fatal(err)
	}
	atStop := d.Written()
	go ping(last) // written after the stop; its answer never comes
	for deadline := time.Now().Add(5 * time.Second); d.Written() == atStop; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("nothing written on the overflow connection after the stop")
		}
	}
	waitState(t, conn, sshx.Down, 10*time.Second)
	acked, final := d.Acked()
	t.Logf("overflow connection: %d written before the stop, %d acknowledged (final %v)", atStop, acked, final)
	if !final {
		t.Fatal("the overflow connection's count is not final once the node was found dead")
	}
	if acked < answered || acked > atStop {
		t.Errorf("acked %d, want between %d and %d", acked, answered, atStop)
	}
	if !d.Undelivered(atStop, time.Now()) {
		t.Error("what was written on the overflow connection after the stop is not undelivered")
	}
}
