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
//
// It waits for input with poll(2) before taking conn, and splices only
// what is there (SPLICE_F_NONBLOCK): a splice blocked on an idle pipe
// would hold conn, whose Close waits for it, so a client that sends
// nothing more (an HTTP/1.0 request, then reading until EOF) would keep
// the relay, the gate and the session from ever ending after the far
// side closed. The poll holds nothing: the process ends under it.
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
	for {
		if err := waitReadable(src); err != nil {
			return true
		}
		var n int64
		var serr error
		werr := raw.Write(func(fd uintptr) bool {
			n, serr = unix.Splice(src, nil, int(fd), nil, 1<<20, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			// The pipe has data (poll said so, and only this reads it):
			// EAGAIN is the socket's, full; wait until it drains.
			return serr != unix.EAGAIN
		})
		if werr != nil || (serr != nil && serr != unix.EINTR) || (serr == nil && n == 0) {
			return true
		}
	}
}

// waitReadable blocks until the pipe fd has data or its writer is gone.
func waitReadable(fd int) error {
	for {
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
		if err != unix.EINTR {
			return err
		}
	}
}
