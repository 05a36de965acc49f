package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/wire"
)

// conn is one ssh session as a net.Conn: writes go to ssh's stdin, reads
// come from its stdout. When the session ends badly, reads and writes
// fail with what ssh (or the master's forced command) said on stderr.
type conn struct {
	m      *Master
	cmd    *exec.Cmd // nil for a keeper's session: exited is then stderr's end
	r      *os.File  // ssh's stdout
	w      *os.File  // ssh's stdin
	stderr *limitedBuffer
	exited chan struct{}

	once    sync.Once
	failure error
	closed  sync.Once
}

// start runs cmd with pipes of its own (files, so deadlines work) and
// returns the connection over them.
func start(cmd *exec.Cmd, m *Master) (*conn, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	c := &conn{m: m, cmd: cmd, r: outR, w: inW, stderr: &limitedBuffer{max: 64 << 10}, exited: make(chan struct{})}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, c.stderr
	// A shared connection's background master holds no pipe of ours, but
	// never let a straggler keep Wait from returning.
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		outR.Close()
		inW.Close()
		return nil, fmt.Errorf("master %s: run %s: %w", m.Name(), cmd.Path, err)
	}
	go func() { cmd.Wait(); close(c.exited) }()
	return c, nil
}

// handed is a session a keeper opened, from its pipes: the ssh process
// is the keeper's child, so its end is seen as the end of its stderr.
func handed(m *Master, r, w, e *os.File) *conn {
	c := &conn{m: m, r: r, w: w, stderr: &limitedBuffer{max: 64 << 10}, exited: make(chan struct{})}
	go func() { io.Copy(c.stderr, e); e.Close(); close(c.exited) }()
	return c
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && c.cmd != nil {
		// The master answered on a session of our own: later commands
		// may have one ready.
		c.m.keeperOnce.Do(c.m.startKeeper)
	}
	if err == io.EOF {
		if f := c.failed(); f != nil {
			return n, f
		}
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, os.ErrClosed) {
		if f := c.failed(); f != nil {
			return n, f
		}
	}
	return n, err
}

// failed waits for ssh to end and says why it did, if it failed: nil
// when the session ended cleanly.
func (c *conn) failed() error {
	c.once.Do(func() {
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			return
		}
		msg := strings.TrimSpace(c.stderr.String())
		if c.cmd == nil {
			// A keeper's session: no exit status here, but ssh and the
			// forced command say nothing on stderr unless something
			// failed.
			if msg != "" {
				c.failure = &wire.ConnError{Err: c.explain(1, msg)}
			}
			return
		}
		state := c.cmd.ProcessState
		if state == nil || state.Success() {
			return
		}
		c.failure = &wire.ConnError{Err: c.explain(state.ExitCode(), msg)}
	})
	return c.failure
}

// explain turns ssh's exit into an error naming the master: a refused
// host key is diagnosed (both fingerprints), anything else quotes ssh or
// the forced command.
func (c *conn) explain(code int, msg string) error {
	if code == 255 && strings.Contains(msg, "Host key verification failed") {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return c.m.hostKeyError(ctx, msg)
	}
	if msg == "" {
		msg = fmt.Sprintf("ssh exited with status %d", code)
	}
	if code == 255 {
		return fmt.Errorf("ssh %s: %s: %w", c.m.Name(), msg, errs.ErrUnavailable)
	}
	return fmt.Errorf("master %s: %s: %w", c.m.Name(), msg, errs.ErrUnavailable)
}

// Close ends the session: end of input for the master, then the ssh
// process.
func (c *conn) Close() error {
	c.closed.Do(func() {
		c.w.Close()
		c.r.Close()
		// A keeper's session ends with its input: the master closes.
		if c.cmd != nil && c.cmd.Process != nil {
			c.cmd.Process.Kill()
		}
	})
	return nil
}

// CloseWrite ends the master's input and leaves the way back open (a
// dial's half-close: ssh passes the end of its stdin on as the channel's
// EOF).
func (c *conn) CloseWrite() error { return c.w.Close() }

func (c *conn) LocalAddr() net.Addr  { return sshAddr("local") }
func (c *conn) RemoteAddr() net.Addr { return sshAddr(c.m.Name()) }

func (c *conn) SetDeadline(t time.Time) error {
	return errors.Join(c.r.SetReadDeadline(t), c.w.SetWriteDeadline(t))
}
func (c *conn) SetReadDeadline(t time.Time) error  { return c.r.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.w.SetWriteDeadline(t) }

// sshAddr names an end of an ssh session.
type sshAddr string

func (a sshAddr) Network() string { return "ssh" }
func (a sshAddr) String() string  { return string(a) }

// limitedBuffer keeps the first max bytes written to it (ssh's stderr),
// safe to read while ssh writes.
type limitedBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
