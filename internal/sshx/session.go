package sshx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
)

// Open starts a session running command on the node's gate and returns it
// as a stream. Reads end with the gate's own error message if it refused.
func (c *Conn) Open(ctx context.Context, command string) (net.Conn, error) {
	client, held, err := c.clientAndDelivery(ctx)
	if err != nil {
		return nil, err
	}
	sess, deliv, release, err := c.newSession(ctx, client, held)
	switch {
	case errors.Is(err, errs.ErrUnavailable):
		return nil, err
	case err != nil:
		// x/crypto's own words ("unexpected packet in response to
		// channel open") mean the connection broke meanwhile.
		return nil, fmt.Errorf("node %s: could not open a session, the connection is failing (%v): %w", c.target.Name, err, errs.ErrUnavailable)
	}
	sc := &sessionConn{sess: sess, node: c.target.Name, command: command, release: release, deliv: deliv}
	if sc.w, err = sess.StdinPipe(); err == nil {
		if sc.r, err = sess.StdoutPipe(); err == nil {
			// A pipe, read only when the gate has failed: Session.Stderr
			// would cost a goroutine and a 32 KiB buffer per session, and
			// the master holds thousands of sessions.
			sc.stderr, err = sess.StderrPipe()
		}
	}
	if err != nil {
		sc.Close()
		return nil, err
	}
	if err := sess.Start(command); err != nil {
		sc.Close()
		return nil, fmt.Errorf("node %s: start %s: %w", c.target.Name, command, err)
	}
	return sc, nil
}

// transport makes HTTP connections out of rpc sessions, and speaks
// HTTP/2 on them (without TLS: SSH is the transport's security), so one
// session carries every request to the node at once: the event stream,
// lease renewals, and as many container creates as a failover needs. A
// session costs the node a fork of the gate and an sshd session; sshd
// allows 10 per connection (MaxSessions), which HTTP/1.1's one request per
// session would cap concurrency at. A second session opens only when the
// first has all its streams (250, the server's limit) in use.
func (c *Conn) transport() *http.Transport {
	t := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.Open(ctx, "rpc")
		},
		MaxConnsPerHost:     2,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
		Protocols:           new(http.Protocols),
	}
	t.Protocols.SetUnencryptedHTTP2(true)
	return t
}

// SFTP opens an SFTP session on the gate (confined to the node's inbox).
func (c *Conn) SFTP(ctx context.Context, opts ...sftp.ClientOption) (*sftp.Client, error) {
	s, err := c.Open(ctx, "sftp")
	if err != nil {
		return nil, err
	}
	sc := s.(*sessionConn)
	// The client closes its writer; so does the session when the client
	// ends: both through the session's one Close.
	client, err := sftp.NewClientPipe(sc.r, sessionWriter{sc}, opts...)
	if err != nil {
		sc.exit()
		sc.Close()
		return nil, fmt.Errorf("node %s: sftp: %w%s", c.target.Name, err, sc.gateSays())
	}
	go func() { client.Wait(); sc.Close() }()
	return client, nil
}

// Dial reaches a declared port of a container on the node.
func (c *Conn) Dial(ctx context.Context, container string, port int) (net.Conn, error) {
	return c.Open(ctx, fmt.Sprintf("dial %s:%d", container, port))
}

// sessionConn is an SSH session as a net.Conn. Deadlines are not
// supported: callers use contexts and Close.
type sessionConn struct {
	sess    *ssh.Session
	node    string
	command string
	r       io.Reader
	w       io.WriteCloser
	stderr  io.Reader
	wmu     sync.Mutex // see Write
	once    sync.Once
	release func() // once closed: the overflow connection's count (overflow.go)
	deliv   *Delivery

	waitOnce sync.Once
	exitErr  error
}

func (s *sessionConn) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err == io.EOF {
		if exitErr := s.exit(); exitErr != nil {
			return n, fmt.Errorf("node %s: %s: %v%s", s.node, s.command, exitErr, s.gateSays())
		}
	}
	return n, err
}

// exit waits (briefly: the output has ended) for the gate's exit status,
// which follows its stderr, and returns its failure if it failed.
func (s *sessionConn) exit() error {
	s.waitOnce.Do(func() {
		done := make(chan error, 1)
		go func() { done <- s.sess.Wait() }()
		select {
		case s.exitErr = <-done:
		case <-time.After(2 * time.Second):
		}
	})
	return s.exitErr
}

// Writes and the input's close hold wmu: x/crypto's channel reads its
// "EOF sent" flag in Write unguarded, so a close from another goroutine
// (an HTTP client's read loop closing the connection while its write
// loop writes) is a data race.
func (s *sessionConn) Write(b []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.w.Write(b)
}

// CloseWrite tells the far side there is no more input.
func (s *sessionConn) CloseWrite() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.w.Close()
}

func (s *sessionConn) Close() error {
	s.once.Do(func() {
		// A write under way may wait for window that never comes: the
		// session is closed without an EOF, which ends that write.
		if s.w != nil && s.wmu.TryLock() {
			s.w.Close()
			s.wmu.Unlock()
		}
		s.sess.Close()
		s.release()
	})
	return nil
}

// sessionWriter is a session's input whose Close closes the session once.
type sessionWriter struct{ s *sessionConn }

func (w sessionWriter) Write(b []byte) (int, error) { return w.s.Write(b) }
func (w sessionWriter) Close() error                { return w.s.Close() }

// gateSays returns what the gate wrote on stderr, if anything. It is
// called once the session's output has ended, when the gate's one-line
// message (it writes nothing else there) has arrived.
func (s *sessionConn) gateSays() string {
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(s.stderr, 4096))
		got <- b
	}()
	var msg string
	select {
	case b := <-got:
		msg = strings.TrimSpace(string(b))
	case <-time.After(time.Second):
	}
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// LocalAddr names the connection the session is on (DeliveryOf).
func (s *sessionConn) LocalAddr() net.Addr              { return sessionAddr{s.node, s.deliv} }
func (s *sessionConn) RemoteAddr() net.Addr             { return sshAddr(s.node) }
func (s *sessionConn) SetDeadline(time.Time) error      { return nil }
func (s *sessionConn) SetReadDeadline(time.Time) error  { return nil }
func (s *sessionConn) SetWriteDeadline(time.Time) error { return nil }

type sshAddr string

func (a sshAddr) Network() string { return "ssh" }
func (a sshAddr) String() string  { return string(a) }
