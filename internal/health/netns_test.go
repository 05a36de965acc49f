package health

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/ns"
)

// TestIsolation checks that probes run in the target's network namespace,
// not in the daemon's: a process started by `unshare --net` has its own
// loopback, where the test's host listener does not exist.
func TestIsolation(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create and join network namespaces")
	}
	ours, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The main thread, which /proc/self names, must never be moved.
		if now, _ := os.Readlink("/proc/self/ns/net"); now != ours {
			t.Errorf("process moved from namespace %s to %s", ours, now)
		}
	})
	hostPort := serve(t, http.NotFoundHandler())
	pid := startSleep(t, "unshare", "--net").Process.Pid
	eventually(t, "unshare to create the namespace", func() bool {
		theirs, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		return theirs != ours && strings.HasPrefix(theirs, "net:")
	})
	ln := listenIn(t, pid)
	inner := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	inner.Listener.Close()
	inner.Listener = ln
	inner.Start()
	t.Cleanup(inner.Close)
	innerPort := ln.Addr().(*net.TCPAddr).Port

	ctx := t.Context()
	err = Probe(ctx, pid, Check{HTTPPath: "/", Port: hostPort})
	if err == nil || !strings.HasPrefix(err.Error(), "connect 127.0.0.1:") {
		t.Errorf("Probe of the host's port in the container = %v, want a connect failure", err)
	}
	if err := Probe(ctx, pid, Check{HTTPPath: "/", Port: innerPort}); err != nil {
		t.Errorf("Probe of the container's port in the container: %v", err)
	}
	if err := Probe(ctx, os.Getpid(), Check{Port: innerPort}); err == nil {
		t.Error("Probe of the container's port in the host succeeded")
	}

	reports, done := runAsync(ctx, pid, Check{HTTPPath: "/", Port: innerPort, Interval: 10 * time.Millisecond})
	awaitStatus(t, reports, done, Healthy)
}

// listenIn brings up pid's loopback and listens on it. The listener's
// socket lives in pid's namespace; it may then be served from any thread.
func listenIn(t *testing.T, pid int) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	ns.Go(func() {
		if err := joinNetns(pid); err != nil {
			ch <- result{err: err}
			return
		}
		if err := loopbackUp(); err != nil {
			ch <- result{err: err}
			return
		}
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		ch <- result{ln, err}
	})
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in the namespace of pid %d: %v", pid, r.err)
	}
	return r.ln
}

// loopbackUp sets lo up in the calling thread's namespace (a new network
// namespace starts with lo down).
func loopbackUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}
