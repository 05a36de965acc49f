package ns_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/ns"
	"github.com/moatcloud/moat/internal/testcluster"
)

// loopbackNetns makes a network namespace with its loopback up and a
// listener on it that answers each connection with "hi" and closes, on a
// thread of its own, and returns the thread's id (whose /proc/TID/ns/net
// is the namespace) and the port.
func loopbackNetns(t testing.TB) (int, int) {
	t.Helper()
	testcluster.RequireRoot(t)
	type made struct {
		tid, port int
		err       error
	}
	ch := make(chan made, 1)
	stop := make(chan struct{})
	ns.Go(func() { // never the main thread, which names the process's namespaces
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
	})
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

// TestDialLoopback: connections reach the namespace's loopback, not
// the gate's, one after another and many at once, and every thread that
// made a socket there is back in the gate's own namespace (or gone).
func TestDialLoopback(t *testing.T) {
	tid, port := loopbackNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dialOnce := func() error {
		conn, err := ns.DialLoopback(ctx, tid, port)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, ok := conn.(*net.TCPConn); !ok {
			t.Errorf("a %T; want a *net.TCPConn (the relay half-closes it)", conn)
		}
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
	if _, err := ns.DialLoopback(ctx, tid, 1); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("a port nothing listens on: %v; want connection refused", err)
	}
	if _, err := ns.DialLoopback(ctx, 1<<30, port); err == nil {
		t.Error("a pid that does not exist was dialled")
	}
	// Every thread but the namespace's own is in the gate's namespace.
	var own unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &own); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if task.Name() == strconv.Itoa(tid) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st); err != nil {
			continue // gone meanwhile
		}
		if st.Ino != own.Ino || st.Dev != own.Dev {
			t.Errorf("thread %s left in another network namespace", task.Name())
		}
	}
}

// BenchmarkConnectInNetns: one connection to a port in another network
// namespace, made and closed.
//
//	go test -run '^$' -bench ConnectInNetns ./internal/gate
func BenchmarkDialLoopback(b *testing.B) {
	tid, port := loopbackNetns(b)
	ctx := context.Background()
	for b.Loop() {
		conn, err := ns.DialLoopback(ctx, tid, port)
		if err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
}

// TestListenLoopback: a listener made in another namespace answers there,
// on its loopback; one asked for in this process's own namespace is
// refused, since it would be a port of the host.
func TestListenLoopback(t *testing.T) {
	tid, _ := loopbackNetns(t)
	ln, err := ns.ListenLoopback(tid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			io.WriteString(c, "here")
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := ns.DialLoopback(ctx, tid, ln.Addr().(*net.TCPAddr).Port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if b, err := io.ReadAll(conn); err != nil || string(b) != "here" {
		t.Fatalf("from the listener: %q, %v", b, err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Errorf("%s answers in this process's namespace too", ln.Addr())
	}
	if ln, err := ns.ListenLoopback(os.Getpid(), 0); !errors.Is(err, ns.ErrHostNetwork) {
		if ln != nil {
			ln.Close()
		}
		t.Errorf("a listener in the host's own namespace: %v, want ErrHostNetwork", err)
	}
}
