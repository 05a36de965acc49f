package gate

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/moatcloud/moat/internal/errs"
)

// relayRPC pipes the session to the node daemon's API socket. The master's
// HTTP client keeps the session open and sends request after request on it.
func relayRPC(ctx context.Context, socket string, session io.ReadWriteCloser) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("rpc: the node daemon is not answering: %v: %w", err, errs.ErrUnavailable)
	}
	return relay(session, conn)
}

// relay copies both ways until the far side is done. When the session's
// input ends, the far side is told (half-close) and its remaining output
// still flows back; when the far side ends, the session ends.
func relay(session io.ReadWriteCloser, conn net.Conn) error {
	defer conn.Close()
	go func() {
		io.Copy(conn, session)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	_, err := io.Copy(session, conn)
	session.Close()
	return err
}
