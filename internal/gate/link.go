package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/ns"
)

// The link role serves one command, mux: the session carries a yamux
// session whose streams each reach port PORT of a running container of
// app TARGET (the --to its authorized_keys line pins), and nothing else.
// The gate is the yamux server; the source node opens the streams.

// Bounds of a mux session.
const (
	// MaxLinkStreams bounds the streams one session serves at once;
	// beyond it a stream is answered "error" at once.
	MaxLinkStreams = 1024
	// linkOpenTimeout bounds the wait for a stream's opening line, so an
	// idle stream does not hold one of those places.
	linkOpenTimeout = 10 * time.Second
	// linkLookupTimeout bounds the node daemon's answer and the connect.
	linkLookupTimeout = 10 * time.Second
	// AppLabel is the container label naming its app.
	AppLabel = "moat.app"
)

// MuxConfig is the yamux configuration of both ends of a link session.
// Windows are large so that one stream can fill a fast path; there are no
// yamux keepalives, because SSH's own find a dead peer and end the
// session, which ends the mux; yamux logs nothing (the session's stderr is
// the peer's).
func MuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.MaxStreamWindowSize = 16 << 20
	c.EnableKeepAlive = false
	c.AcceptBacklog = MaxLinkStreams
	// A stream's frame waits this long for the session's output, shared
	// by all streams, before its write fails: longer than the default,
	// since a busy SSH channel is not a dead one.
	c.ConnectionWriteTimeout = 30 * time.Second
	c.LogOutput = io.Discard
	return c
}

// linkTarget is what a link key may reach: port Port of the running
// containers labelled moat.app=App. lookup and dial are the node daemon
// and the container's network namespace; tests replace them.
type linkTarget struct {
	App    string
	Port   int
	lookup func(ctx context.Context, name string) (nodeapi.Container, error)
	dial   func(ctx context.Context, pid, port int) (net.Conn, error)
	max    int             // streams served at once: MaxLinkStreams
	cache  *containerCache // nil: every stream asks the daemon
}

// serveMux serves a link session until it ends (the session's input
// ends), then closes every stream and connection it opened.
func serveMux(ctx context.Context, socket, app string, port int, session io.ReadWriteCloser) error {
	// One processor: a link session's work is handing frames between the
	// session's pipes and the containers' sockets, all through the poller;
	// with one P each hand-off is a switch on the same thread instead of a
	// wake-up of another (BenchmarkLinks on a loaded 2-core machine: round
	// trip p99 about halved, setup p50 a tenth lower, throughput the same;
	// sshd beside it is one thread too).
	runtime.GOMAXPROCS(1)
	api := nodeapi.UnixClient(socket)
	l := &linkTarget{App: app, Port: port, lookup: api.Container, dial: ns.DialLoopback, max: MaxLinkStreams,
		cache: newContainerCache()}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go l.cache.follow(ctx, api)
	return l.serve(ctx, polled(session))
}

func (l *linkTarget) serve(ctx context.Context, session io.ReadWriteCloser) error {
	mux, err := yamux.Server(session, MuxConfig())
	if err != nil {
		return fmt.Errorf("mux: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		mux.Close()
		wg.Wait()
	}()
	// The session ends with the context too (the gate is told to stop).
	stop := context.AfterFunc(ctx, func() { mux.Close() })
	defer stop()
	places := make(chan struct{}, l.max)
	for {
		stream, err := mux.AcceptStream()
		if err != nil {
			return nil // the session ended: the peer is done or gone
		}
		select {
		case places <- struct{}{}:
		default:
			// Inline, not in a goroutine: while this write waits, no stream
			// is accepted, and yamux refuses streams past its backlog.
			answer(stream, refuse(errs.ErrUnavailable, "%d connections already open on this session", l.max))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-places }()
			l.serveStream(ctx, stream)
		}()
	}
}

// serveStream connects one stream to the container it names, or answers
// why not and closes it: the session and its other streams go on.
func (l *linkTarget) serveStream(ctx context.Context, stream *yamux.Stream) {
	stream.SetReadDeadline(time.Now().Add(linkOpenTimeout))
	conn, err := l.open(ctx, stream)
	if err != nil {
		answer(stream, err)
		return
	}
	stream.SetReadDeadline(time.Time{})
	if _, err := io.WriteString(stream, "ok\n"); err != nil {
		conn.Close()
		stream.Close()
		return
	}
	relayStream(ctx, stream, conn)
}

// open reads a stream's opening line and connects to the container it
// names, if the link may reach it. Its errors are the answer's reason:
// they name the container and say why, and hold nothing else of the node.
func (l *linkTarget) open(ctx context.Context, r io.Reader) (net.Conn, error) {
	name, err := nodeapi.ReadLinkLine(r)
	if err != nil {
		if errors.Is(err, errs.ErrInvalid) {
			return nil, refuse(errs.ErrInvalid, "the opening line is longer than %d bytes", nodeapi.MaxLinkLine)
		}
		return nil, refuse(errs.ErrInvalid, "no opening line")
	}
	if !nodeapi.ValidName(name) {
		return nil, refuse(errs.ErrInvalid, "%s is not a container name", quote(name))
	}
	ctx, cancel := context.WithTimeout(ctx, linkLookupTimeout)
	defer cancel()
	c, err := l.container(ctx, name)
	// A container of another app answers as one that does not exist: the
	// key learns nothing of what else runs here.
	if errors.Is(err, errs.ErrNotFound) || err == nil && c.Spec.Labels[AppLabel] != l.App {
		return nil, refuse(errs.ErrNotFound, "container %s: no replica of %s by that name on this node", name, l.App)
	}
	if err != nil {
		return nil, refuse(errs.ErrUnavailable, "container %s: the node daemon is not answering", name)
	}
	if c.State != nodeapi.StateRunning || c.Pid == 0 {
		return nil, refuse(errs.ErrUnavailable, "container %s is %s, not running", name, c.State)
	}
	if !declares(c, l.Port) {
		return nil, refuse(errs.ErrForbidden, "container %s does not declare tcp port %d", name, l.Port)
	}
	conn, err := l.dial(ctx, c.Pid, l.Port)
	if err != nil {
		return nil, refuse(errs.ErrUnavailable, "container %s: cannot connect to port %d: %s", name, l.Port, connectError(err))
	}
	return conn, nil
}

// polled is the session with its pipes (the gate's stdin and stdout) read
// and written through the runtime's poller rather than in blocking system
// calls: a goroutine blocked in read(2) holds its thread and processor, and
// the stream it wakes waits for another to run. Each frame of a link
// crosses these pipes, twice per round trip. The pipes are grown to
// linkPipeSize.
func polled(session io.ReadWriteCloser) io.ReadWriteCloser {
	rw, ok := session.(sessionRW)
	if !ok {
		return session
	}
	in, ok1 := rw.Reader.(*os.File)
	out, ok2 := rw.Writer.(*os.File)
	if !ok1 || !ok2 {
		return session
	}
	// Duplicates, made non-blocking (os.NewFile then registers them with
	// the poller); the originals are closed only once both are ready, so
	// the session ends with the new files' Close.
	fds := make([]int, 0, 2)
	for _, f := range []*os.File{in, out} {
		fd, err := unix.Dup(int(f.Fd()))
		if err == nil {
			unix.CloseOnExec(fd)
			fds = append(fds, fd)
			err = unix.SetNonblock(fd, true)
		}
		if err != nil {
			for _, fd := range fds {
				unix.SetNonblock(fd, false) // the originals share the flag
				unix.Close(fd)
			}
			return session
		}
	}
	growPipes(fds)
	in.Close()
	out.Close()
	return sessionRW{os.NewFile(uintptr(fds[0]), in.Name()), os.NewFile(uintptr(fds[1]), out.Name())}
}

// linkPipeSize is what the session's pipes to sshd are grown to (Linux's
// default is 64 KiB, pipe-max-size 1 MiB). With 64 KiB, sshd, which
// writes a channel's data to the gate only as the pipe drains, and the
// gate, reading it, woke each other every 64 KiB, and a bulk stream over a
// link carried 0.84-0.89x ssh -L's throughput; with 1 MiB, 1.1-1.3x (same
// loaded 2-core machine, interleaved). The kernel takes the pages only as
// data waits in the pipe, so an idle session costs nothing more.
const linkPipeSize = 1 << 20

// growPipes grows the session's pipes to linkPipeSize, best effort, and
// only for a privileged gate (root, as enrolment sets it up). An
// unprivileged user's pipes count against its pipe-user-pages-soft
// (64 MiB by default) whatever they hold, and F_SETPIPE_SZ checks only
// the hard limit: 32 grown sessions would use it up, after which every
// new pipe of that user, sshd's for the next sessions included, gets 8
// KiB instead of 64. Past pipe-max-size (unprivileged) the call fails and
// the pipe keeps its size.
func growPipes(fds []int) {
	if !pipePrivileged() {
		return
	}
	for _, fd := range fds {
		unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, linkPipeSize)
	}
}

// pipePrivileged says whether the kernel exempts this thread from the
// per-user pipe limits: CAP_SYS_RESOURCE or CAP_SYS_ADMIN in effect.
func pipePrivileged() bool {
	var data [2]unix.CapUserData
	if err := unix.Capget(&unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}, &data[0]); err != nil {
		return false
	}
	const want = 1<<unix.CAP_SYS_RESOURCE | 1<<unix.CAP_SYS_ADMIN
	return data[0].Effective&want != 0
}

// container is what the node daemon says of the named container, or
// said of it last if that still holds (see containerCache).
func (l *linkTarget) container(ctx context.Context, name string) (nodeapi.Container, error) {
	if l.cache == nil {
		return l.lookup(ctx, name)
	}
	if c, ok := l.cache.get(name); ok {
		return c, nil
	}
	gen := l.cache.generation()
	c, err := l.lookup(ctx, name)
	if err == nil {
		l.cache.put(gen, name, c)
	}
	return c, err
}

// connectError says why a connect failed in a word or two (the errno's
// words), not the error's text, which may hold paths of the node.
func connectError(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return "failed"
}

func declares(c nodeapi.Container, port int) bool {
	for _, p := range c.Spec.Ports {
		if p.Port == port && p.ProtocolOrTCP() == "tcp" {
			return true
		}
	}
	return false
}

// answer writes a refusal's one line and closes the stream (our side:
// the peer closes its own).
func answer(stream io.WriteCloser, err error) {
	io.WriteString(stream, answerLine(err))
	stream.Close()
}

// refusal is why a stream is refused, and the kind of it.
type refusal struct {
	why  string
	kind error
}

func refuse(kind error, format string, args ...any) error {
	return &refusal{fmt.Sprintf(format, args...), kind}
}

func (r *refusal) Error() string { return r.why + ": " + r.kind.Error() }
func (r *refusal) Unwrap() error { return r.kind }

// answerLine is "error: WHY\n", one line of at most MaxLinkLine bytes
// whatever the reason holds.
func answerLine(err error) string {
	why := err.Error()
	var r *refusal
	if errors.As(err, &r) {
		why = r.why // the kind's own word ("forbidden") adds nothing
	}
	why = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, why)
	if max := nodeapi.MaxLinkLine - len("error: "); len(why) > max {
		why = strings.ToValidUTF8(why[:max], "")
	}
	return "error: " + why + "\n"
}
