package gate

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// dial pipes the session to a port on a container's loopback. Only ports
// the container declared may be reached: the session is authenticated by
// SSH, and this is how SSH adds authentication to any TCP service.
func dial(ctx context.Context, socket, container string, port int, session io.ReadWriteCloser) error {
	c, err := nodeapi.UnixClient(socket).Container(ctx, container)
	if err != nil {
		return fmt.Errorf("dial %s:%d: %w", container, port, err)
	}
	if c.State != nodeapi.StateRunning || c.Pid == 0 {
		return fmt.Errorf("dial %s:%d: the container is %s: %w", container, port, c.State, errs.ErrUnavailable)
	}
	declared := slices.ContainsFunc(c.Spec.Ports, func(p nodeapi.Port) bool {
		return p.Port == port && p.ProtocolOrTCP() == "tcp"
	})
	if !declared {
		return fmt.Errorf("dial %s:%d: the container does not declare tcp port %d: %w", container, port, port, errs.ErrForbidden)
	}
	conn, err := dialInNetns(ctx, c.Pid, port)
	if err != nil {
		return fmt.Errorf("dial %s:%d: %w", container, port, err)
	}
	return relay(session, conn)
}

// dialInNetns connects to 127.0.0.1:port inside the network namespace of
// pid. The socket belongs to the namespace it was created in, so only its
// creation needs the namespace: that happens on a thread locked and moved
// into it, which is thrown away afterwards.
func dialInNetns(ctx context.Context, pid, port int) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("open network namespace: %w", err)}
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			ch <- result{err: fmt.Errorf("enter network namespace: %w", err)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}
