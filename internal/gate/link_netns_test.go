package gate

import (
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/testcluster"
)

// loopbackNetns makes a network namespace with its loopback up and a
// listener on it that answers each connection with "hi" and closes, on a
// thread of its own, and returns the thread's id (whose /proc/TID/ns/net
// is the namespace) and the port.
func loopbackNetns(t *testing.T) (int, int) {
	t.Helper()
	testcluster.RequireRoot(t)
	type made struct {
		tid, port int
		err       error
	}
	ch := make(chan made, 1)
	stop := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- made{err: err}
			return
		}
		if err := loopbackUp(); err != nil {
			ch <- made{err: err}
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			ch <- made{err: err}
			return
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.WriteString(c, "hi")
				c.Close()
			}
		}()
		ch <- made{tid: unix.Gettid(), port: ln.Addr().(*net.TCPAddr).Port}
		<-stop
		ln.Close()
	}()
	m := <-ch
	if m.err != nil {
		t.Fatalf("make a network namespace: %v", m.err)
	}
	t.Cleanup(func() { close(stop) })
	return m.tid, m.port
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// TestNetnsDialers: connections reach the namespace's loopback, not the
// gate's; a namespace's threads serve dial after dial, more are added
// for dials at once, and all go once idle.
func TestNetnsDialers(t *testing.T) {
	tid, port := loopbackNetns(t)
	d := newNetnsDialers(200 * time.Millisecond)
	ctx := context.Background()
	dialOnce := func() error {
		conn, err := d.dial(ctx, tid, port)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(conn)
		if err != nil || string(b) != "hi" {
			t.Errorf("read %q, %v; want hi", b, err)
		}
		return nil
	}
	for range 20 {
		if err := dialOnce(); err != nil {
			t.Fatal(err)
		}
	}
	d.mu.Lock()
	threads := 0
	for _, p := range d.pools {
		threads += p.threads
	}
	d.mu.Unlock()
	if threads != 1 {
		t.Errorf("%d threads after 20 dials one after another; want 1", threads)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := dialOnce(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// The port is the namespace's: in the gate's own, nothing listens.
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
		b := make([]byte, 2)
		c.SetDeadline(time.Now().Add(time.Second))
		n, _ := io.ReadFull(c, b)
		c.Close()
		if string(b[:n]) == "hi" {
			t.Error("the namespace's listener answers in the gate's own namespace")
		}
	}
	if _, err := d.dial(ctx, tid, 1); err == nil {
		t.Error("a port nothing listens on was connected")
	}
	waitFor(t, func() bool { return d.namespaces() == 0 }, "idle threads to leave the namespace")
	if _, err := d.dial(ctx, 1<<30, port); err == nil {
		t.Error("a pid that does not exist was dialled")
	}
}
