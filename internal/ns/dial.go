package ns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A socket belongs to the network namespace of the thread that creates
// it, and stays there whatever thread uses it afterwards: only socket()
// needs the container's namespace. DialLoopback moves a thread there for
// that one call and straight back, then connects from anywhere: no
// thread is made (Go's thread per connection costs about half a
// millisecond on a small node) or kept (threads parked in a namespace
// cost wake-ups on every connect). The two setns calls take a few
// microseconds; a whole connect about 0.12 ms on an idle machine
// (BenchmarkConnectInNetns), 0.24-0.29 ms p50 inside BenchmarkLinks on
// the loaded 2-core test machine, where the parked threads took 0.32.

// hostNetns is the process's own network namespace, the main thread's
// (which is never moved), held open from the first dial on.
var hostNetns = sync.OnceValues(func() (int, error) {
	return unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
})

// DialLoopback connects to 127.0.0.1:port in the network namespace pid is
// in now: how the gate and the node daemon reach a container's port.
func DialLoopback(ctx context.Context, pid, port int) (net.Conn, error) {
	fd, err := socketInNetns(pid)
	if err != nil {
		return nil, err
	}
	err = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to port %d: %w", port, err)
	}
	f := os.NewFile(uintptr(fd), "link")
	c, err := net.FileConn(f) // a duplicate, registered with the poller
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("connect to port %d: %w", port, err)
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("connect to port %d: a %T, not a TCP connection", port, c)
	}
	if err := connected(ctx, tc); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to port %d: %w", port, err)
	}
	return c, nil
}

// connected waits until a connect in progress has ended, as net.Dial
// does: writable, then SO_ERROR says how.
func connected(ctx context.Context, c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(dl)
		defer c.SetWriteDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	var cerr error
	werr := rc.Write(func(fd uintptr) bool {
		errno, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			cerr = err
		case errno != 0:
			cerr = unix.Errno(errno)
		default:
			if _, err := unix.Getpeername(int(fd)); errors.Is(err, unix.ENOTCONN) {
				return false // still in progress: wait until writable
			}
		}
		return true
	})
	if werr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return werr
	}
	return cerr
}

// socketInNetns makes a TCP socket in pid's network namespace.
func socketInNetns(pid int) (int, error) {
	host, err := hostNetns()
	if err != nil {
		return -1, fmt.Errorf("this process's own network namespace: %w", err)
	}
	target, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open the network namespace of pid %d: %w", pid, err)
	}
	defer unix.Close(target)
	ch := make(chan madeSocket, 1)
	go makeSocket(target, host, pid, ch)
	r := <-ch
	return r.fd, r.err
}

type madeSocket struct {
	fd  int
	err error
}

// makeSocket runs on a goroutine of its own, whose thread moves into the
// target namespace for socket() and back. A thread that cannot move back
// stays locked, so the runtime throws it away with the goroutine.
func makeSocket(target, host, pid int, ch chan<- madeSocket) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// Never the main thread, whose namespaces are the process's in
		// /proc: hold it while another goroutine, which cannot start on
		// it meanwhile, does the job.
		done := make(chan struct{})
		go func() {
			defer close(done)
			makeSocket(target, host, pid, ch)
		}()
		<-done
		runtime.UnlockOSThread()
		return
	}
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread() // it did not move
		ch <- madeSocket{-1, fmt.Errorf("join the network namespace of pid %d: %w", pid, err)}
		return
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		fd, err = -1, fmt.Errorf("socket in the network namespace of pid %d: %w", pid, err)
	}
	if unix.Setns(host, unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	ch <- madeSocket{fd, err}
}
