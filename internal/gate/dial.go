package gate

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/ns"
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
// creation needs the namespace: that happens on a thread moved into it
// and thrown away afterwards.
func dialInNetns(ctx context.Context, pid, port int) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	ns.Go(func() {
		if err := ns.Join(pid, "net"); err != nil {
			ch <- result{err: err}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ch <- result{conn, err}
	})
	r := <-ch
	return r.conn, r.err
}
