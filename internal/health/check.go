package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxBody is how much of a response body a check reads.
const maxBody = 64 << 10

// errWrongThread guards the invariant everything here rests on: the socket
// is created on the thread that joined the namespace.
var errWrongThread = errors.New("socket created off the namespace thread")

// statusError is an HTTP answer outside 200–399.
type statusError struct{ status string }

func (e *statusError) Error() string { return e.status }

// check runs one check of c; it must be called on the locked thread tid.
// The dial (socket and connect) runs on the calling goroutine because the
// address is a single literal IP; the Control hook makes sure of it.
func check(ctx context.Context, c Check, tid int) error {
	cctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))
	d := net.Dialer{Control: func(string, string, syscall.RawConn) error {
		if unix.Gettid() != tid {
			return errWrongThread
		}
		return nil
	}}
	conn, err := d.DialContext(cctx, "tcp4", addr)
	if err != nil {
		return failure(ctx, "connect "+addr, c.Timeout, err)
	}
	defer conn.Close()
	if c.HTTPPath == "" {
		return nil
	}
	if err := get(cctx, conn, c.HTTPPath); err != nil {
		return failure(ctx, "GET "+c.HTTPPath, c.Timeout, err)
	}
	return nil
}

// get sends GET path on conn and checks the status of the answer, within
// ctx's deadline.
func get(ctx context.Context, conn net.Conn, path string) error {
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req, err := http.NewRequest(http.MethodGet, "http://localhost"+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "moat-health")
	req.Close = true
	if err := req.Write(conn); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return err
	}
	// The body is read for politeness only, and not closed: Close could
	// drain it past maxBody; closing conn is enough.
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return &statusError{status: resp.Status}
	}
	return nil
}

// failure describes err, which happened during op, in one short line:
// "connect 127.0.0.1:8080: connection refused", "GET /healthz: timeout
// after 1s", "GET /healthz: 503 Service Unavailable".
func failure(ctx context.Context, op string, timeout time.Duration, err error) error {
	var status *statusError
	var errno syscall.Errno
	var nerr net.Error
	switch {
	case errors.As(err, &status):
	case ctx.Err() != nil:
		err = context.Cause(ctx)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &nerr) && nerr.Timeout():
		return fmt.Errorf("%s: %w after %v", op, ErrTimeout, timeout)
	case errors.As(err, &errno):
		err = errno
	}
	return fmt.Errorf("%s: %w", op, err)
}
