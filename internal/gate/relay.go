package gate

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

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
	in, out := io.Reader(session), io.Writer(session)
	if s, ok := session.(sessionRW); ok {
		// The session's own pipes, which the kernel splices to and from
		// the connection: the bytes never pass through this process.
		in, out = s.Reader, s.Writer
	}
	go func() {
		if !spliceIn(conn, in) {
			io.CopyBuffer(writerOnly{conn}, in, make([]byte, 256<<10))
		}
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	_, err := io.Copy(out, conn)
	session.Close()
	return err
}

// writerOnly hides a writer's ReadFrom, so io.CopyBuffer uses its buffer.
type writerOnly struct{ io.Writer }

// spliceIn moves everything from the pipe in to conn with splice(2), and
// says whether it could (in is a pipe, conn a socket). It returns at the
// pipe's end or on the first error.
func spliceIn(conn net.Conn, in io.Reader) bool {
	f, ok := in.(*os.File)
	sc, ok2 := conn.(syscall.Conn)
	if !ok || !ok2 {
		return false
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	src := int(f.Fd())
	for done := false; !done; {
		werr := raw.Write(func(fd uintptr) bool {
			n, err := unix.Splice(src, nil, int(fd), nil, 1<<20, unix.SPLICE_F_MOVE|unix.SPLICE_F_MORE)
			switch {
			case err == unix.EAGAIN:
				return false // the socket is full: wait until it drains
			case err == unix.EINTR:
				return true
			case err != nil || n == 0:
				done = true
			}
			return true
		})
		if werr != nil {
			done = true
		}
	}
	return true
}
