package gate

import (
	"context"
	"fmt"
	"io"
	"slices"

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
	conn, err := ns.DialLoopback(ctx, c.Pid, port)
	if err != nil {
		return fmt.Errorf("dial %s:%d: %w", container, port, err)
	}
	return relay(session, conn)
}
