package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// fakeNode stands in for the node daemon and the containers' network
// namespaces: each running container's pid maps to a listener on
// loopback that reads a connection to its end and answers how much it
// read (the probe's sink), so half-close is seen both ways.
type fakeNode struct {
	containers map[string]nodeapi.Container
	addrs      map[int]string // pid: its "port"
	mu         sync.Mutex
	open       int         // connections the sinks hold
	greeted    chan string // what db-greet read after it ended its side
}

func newFakeNode(t *testing.T) *fakeNode {
	n := &fakeNode{containers: map[string]nodeapi.Container{}, addrs: map[int]string{}, greeted: make(chan string, 1)}
	add := func(name, app, state string, ports ...int) {
		pid := len(n.containers) + 100
		c := nodeapi.Container{ID: name, State: state, Spec: nodeapi.ContainerSpec{Name: name, Labels: map[string]string{AppLabel: app}}}
		if state == nodeapi.StateRunning {
			c.Pid = pid
			n.addrs[pid] = n.listen(t, name == "db-greet")
		}
		for _, p := range ports {
			c.Spec.Ports = append(c.Spec.Ports, nodeapi.Port{Port: p})
		}
		n.containers[name] = c
	}
	add("db-1", "db", nodeapi.StateRunning, 5432, 8080)
	add("db-greet", "db", nodeapi.StateRunning, 5432)
	add("db-2", "db", nodeapi.StateRunning, 8080)
	add("db-3", "db", nodeapi.StateExited, 5432)
	add("db-x", "db-x", nodeapi.StateRunning, 5432)
	add("web-1", "web", nodeapi.StateRunning, 5432)
	add("nolabel", "", nodeapi.StateRunning, 5432)
	udp := n.containers["db-1"]
	udp.ID, udp.Spec.Name, udp.Spec.Ports = "db-udp", "db-udp", []nodeapi.Port{{Port: 5432, Protocol: "udp"}}
	n.containers["db-udp"] = udp
	return n
}

// listen serves a sink, or a greeter: it says hello and ends its side
// first, then reads the client's bytes to their end.
func (n *fakeNode) listen(t *testing.T, greet bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.mu.Lock()
			n.open++
			n.mu.Unlock()
			go func() {
				defer func() { n.mu.Lock(); n.open--; n.mu.Unlock() }()
				defer c.Close()
				if greet {
					io.WriteString(c, "hello")
					c.(*net.TCPConn).CloseWrite()
					got, _ := io.ReadAll(c)
					n.greeted <- string(got)
					return
				}
				got, _ := io.ReadAll(c)
				fmt.Fprintf(c, "read %d: %s", len(got), got)
			}()
		}
	}()
	return ln.Addr().String()
}

func (n *fakeNode) openConns() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.open
}

func (n *fakeNode) target(app string, port int) *linkTarget {
	return &linkTarget{App: app, Port: port, max: MaxLinkStreams,
		lookup: func(_ context.Context, name string) (nodeapi.Container, error) {
			c, ok := n.containers[name]
			if !ok {
				return c, fmt.Errorf("container %q: %w", name, errs.ErrNotFound)
			}
			return c, nil
		},
		dial: func(ctx context.Context, pid, _ int) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", n.addrs[pid])
		},
	}
}

// startMux serves a link session for app:port and returns its client end,
// and a wait for the gate to return once the session ends.
func startMux(t *testing.T, l *linkTarget) (*yamux.Session, func() error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- l.serve(ctx, a) }()
	client, err := yamux.Client(b, MuxConfig())
	if err != nil {
		t.Fatal(err)
	}
	wait := sync.OnceValue(func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("the gate still serves 10s after its session ended")
		}
	})
	t.Cleanup(func() {
		client.Close()
		cancel()
		if err := wait(); err != nil {
			t.Error(err)
		}
	})
	return client, wait
}

// openLink opens a stream naming a container and reads the gate's answer.
func openLink(t *testing.T, mux *yamux.Session, line string) (net.Conn, error) {
	t.Helper()
	s, err := mux.OpenStream()
	if err != nil {
		t.Fatalf("open a stream: %v", err)
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(s, line); err != nil {
		t.Fatalf("write the opening line: %v", err)
	}
	answer, err := nodeapi.ReadLinkLine(s)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("no answer: %w", err)
	}
	if err := nodeapi.LinkAnswer(answer); err != nil {
		// The gate closed its side after the answer.
		if b, rerr := io.ReadAll(s); rerr != nil || len(b) > 0 {
			t.Errorf("after %q: %q, %v; want the end of the stream", answer, b, rerr)
		}
		s.Close()
		return nil, err
	}
	return s, nil
}

// roundTrip sends payload on a link stream, half-closes it, and checks
// the sink's answer and the stream's end.
func roundTrip(t *testing.T, s net.Conn, payload string) error {
	defer s.Close()
	if _, err := io.WriteString(s, payload); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	// yamux's Close is its half-close: a FIN, reads go on.
	if err := s.Close(); err != nil {
		return fmt.Errorf("half-close: %w", err)
	}
	got, err := io.ReadAll(s)
	if want := fmt.Sprintf("read %d: %s", len(payload), payload); err != nil || string(got) != want {
		return fmt.Errorf("got %.60q, %v; want %.60q", got, err, want)
	}
	return nil
}

func goodStream(t *testing.T, mux *yamux.Session, payload string) {
	t.Helper()
	s, err := openLink(t, mux, "db-1\n")
	if err != nil {
		t.Fatalf("db-1: %v", err)
	}
	if err := roundTrip(t, s, payload); err != nil {
		t.Fatal(err)
	}
}

func TestLinkMuxReachesOnlyItsTarget(t *testing.T) {
	n := newFakeNode(t)
	mux, _ := startMux(t, n.target("db", 5432))
	goodStream(t, mux, "hello")
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB: past the first window
	goodStream(t, mux, big)

	for _, tt := range []struct{ name, line, says string }{
		{"another app's container", "web-1\n", "no replica of db"},
		{"an app whose name extends the target's", "db-x\n", "no replica of db"},
		{"a container without an app", "nolabel\n", "no replica of db"},
		{"a container that does not exist", "nosuch\n", "no replica of db"},
		{"a replica not declaring the port", "db-2\n", "does not declare tcp port 5432"},
		{"a replica declaring the port as udp", "db-udp\n", "does not declare tcp port 5432"},
		{"a stopped replica", "db-3\n", "exited, not running"},
		{"a name with a port", "db-1:8080\n", "not a container name"},
		{"a path", "../../etc/moat\n", "not a container name"},
		{"an empty line", "\n", "not a container name"},
		{"a line with a carriage return", "db-1\r\n", "not a container name"},
		{"control characters", "\x1b[2J\x00\n", "not a container name"},
		{"an overlong line", strings.Repeat("a", 4096) + "\n", "longer than 512 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := openLink(t, mux, tt.line)
			if err == nil {
				s.Close()
				t.Fatalf("%.40q: connected; want refused", tt.line)
			}
			if !errors.Is(err, errs.ErrUnavailable) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("%.40q: %v; want an error answer saying %q", tt.line, err, tt.says)
			}
			// The mux is still up, and still serves the link.
			goodStream(t, mux, "again")
		})
	}
}

// TestLinkMuxHalfCloseFromTheContainer: the container ends its side
// first; the client reads the end, and its own bytes still reach the
// container afterwards.
func TestLinkMuxHalfCloseFromTheContainer(t *testing.T) {
	n := newFakeNode(t)
	mux, _ := startMux(t, n.target("db", 5432))
	s, err := openLink(t, mux, "db-greet\n")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := make([]byte, 16)
	var got []byte
	for {
		k, err := s.Read(b)
		got = append(got, b[:k]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	if string(got) != "hello" {
		t.Fatalf("read %q; want hello, then the end", got)
	}
	if _, err := io.WriteString(s, "after your end"); err != nil {
		t.Fatalf("write after the container's end: %v", err)
	}
	s.Close()
	select {
	case g := <-n.greeted:
		if g != "after your end" {
			t.Errorf("the container read %q", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the container never read the client's end")
	}
}

// TestLinkMuxNoOpeningLine: a stream that ends, or idles, without naming
// a container is answered and closed; the mux goes on.
func TestLinkMuxNoOpeningLine(t *testing.T) {
	n := newFakeNode(t)
	mux, _ := startMux(t, n.target("db", 5432))
	s, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(s, "db-1") // no newline, then the end
	s.Close()
	b, err := io.ReadAll(s)
	if err != nil || !strings.HasPrefix(string(b), "error: no opening line") {
		t.Errorf("a stream ended before its line: %q, %v", b, err)
	}
	goodStream(t, mux, "still here")
}

// TestLinkMuxManyStreams: many connections at once on one session, each
// with its own bytes.
func TestLinkMuxManyStreams(t *testing.T) {
	n := newFakeNode(t)
	mux, _ := startMux(t, n.target("db", 5432))
	var wg sync.WaitGroup
	errc := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := openLink(t, mux, "db-1\n")
			if err != nil {
				errc <- err
				return
			}
			if err := roundTrip(t, s, strings.Repeat(fmt.Sprintf("stream %d;", i), 1000*(i+1))); err != nil {
				errc <- fmt.Errorf("stream %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// TestLinkMuxBoundsStreams: past its bound, a session's new streams are
// answered at once, and served again once others end.
func TestLinkMuxBoundsStreams(t *testing.T) {
	n := newFakeNode(t)
	l := n.target("db", 5432)
	l.max = 3
	mux, _ := startMux(t, l)
	var held []net.Conn
	for range 3 {
		s, err := openLink(t, mux, "db-1\n")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, s)
	}
	if s, err := openLink(t, mux, "db-1\n"); err == nil || !strings.Contains(err.Error(), "3 connections already open") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("a 4th stream: %v; want refused, 3 open", err)
	}
	if err := roundTrip(t, held[0], "done"); err != nil {
		t.Fatal(err)
	}
	// Its place is free once the gate has seen it end.
	waitFor(t, func() bool {
		s, err := openLink(t, mux, "db-1\n")
		if err != nil {
			return false
		}
		held[0] = s
		return true
	}, "a place for a new stream")
	for _, s := range held {
		s.Close()
	}
}

// TestLinkMuxEndsWithTheSession: when the session's input ends, the gate
// returns and closes the container connections it held.
func TestLinkMuxEndsWithTheSession(t *testing.T) {
	n := newFakeNode(t)
	mux, wait := startMux(t, n.target("db", 5432))
	held := make([]net.Conn, 3)
	for i := range held {
		s, err := openLink(t, mux, "db-1\n")
		if err != nil {
			t.Fatal(err)
		}
		held[i] = s
	}
	waitFor(t, func() bool { return n.openConns() == 3 }, "3 connections open at the sinks")
	mux.Close()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return n.openConns() == 0 }, "the sinks' connections closed")
}

// TestLinkAnswerLine: whatever a refusal holds, its answer is one line
// the client's bounded reader takes.
func TestLinkAnswerLine(t *testing.T) {
	for _, err := range []error{
		refuse(errs.ErrInvalid, "%s", strings.Repeat("é", 1000)),
		refuse(errs.ErrInvalid, "a\nb\rc\x00d"),
		errors.New("plain"),
	} {
		line := answerLine(err)
		got, rerr := nodeapi.ReadLinkLine(strings.NewReader(line))
		if rerr != nil || got+"\n" != line || strings.ContainsAny(got, "\r\x00") || !strings.HasPrefix(got, "error: ") {
			t.Errorf("answerLine(%.40q) = %.60q; read back %.60q, %v", err, line, got, rerr)
		}
		if aerr := nodeapi.LinkAnswer(got); !errors.Is(aerr, errs.ErrUnavailable) {
			t.Errorf("LinkAnswer(%.40q) = %v; want unavailable", got, aerr)
		}
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FuzzLinkOpen: whatever a stream opens with, the gate connects only to a
// running replica of the link's app that declares its port, or answers
// one bounded line.
func FuzzLinkOpen(f *testing.F) {
	for _, s := range []string{"db-1\n", "db-2\n", "web-1\n", "db-1:8080\n", "\n", "", "db-1", strings.Repeat("x", 600) + "\n", "db-1\nrest", "../x\n", "db-3\n"} {
		f.Add([]byte(s))
	}
	containers := map[string]nodeapi.Container{
		"db-1":  {State: nodeapi.StateRunning, Pid: 1, Spec: nodeapi.ContainerSpec{Labels: map[string]string{AppLabel: "db"}, Ports: []nodeapi.Port{{Port: 5432}}}},
		"db-2":  {State: nodeapi.StateRunning, Pid: 2, Spec: nodeapi.ContainerSpec{Labels: map[string]string{AppLabel: "db"}, Ports: []nodeapi.Port{{Port: 8080}}}},
		"db-3":  {State: nodeapi.StateExited, Spec: nodeapi.ContainerSpec{Labels: map[string]string{AppLabel: "db"}, Ports: []nodeapi.Port{{Port: 5432}}}},
		"web-1": {State: nodeapi.StateRunning, Pid: 4, Spec: nodeapi.ContainerSpec{Labels: map[string]string{AppLabel: "web"}, Ports: []nodeapi.Port{{Port: 5432}}}},
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var dialled []int
		l := &linkTarget{App: "db", Port: 5432,
			lookup: func(_ context.Context, name string) (nodeapi.Container, error) {
				if !nodeapi.ValidName(name) {
					t.Fatalf("looked up %q", name)
				}
				c, ok := containers[name]
				if !ok {
					return c, errs.ErrNotFound
				}
				return c, nil
			},
			dial: func(_ context.Context, pid, port int) (net.Conn, error) {
				dialled = append(dialled, pid)
				if port != 5432 {
					t.Fatalf("dialled port %d", port)
				}
				a, b := net.Pipe()
				b.Close()
				return a, nil
			},
		}
		r := strings.NewReader(string(in))
		conn, err := l.open(context.Background(), r)
		if err == nil {
			conn.Close()
			line, _, _ := strings.Cut(string(in), "\n")
			if line != "db-1" || len(dialled) != 1 || dialled[0] != 1 {
				t.Fatalf("%q: connected (dialled %v)", in, dialled)
			}
			if rest := len(in) - len(line) - 1; r.Len() != rest {
				t.Fatalf("%q: the opening consumed %d bytes of the connection's", in, rest-r.Len())
			}
			return
		}
		if len(dialled) > 0 {
			t.Fatalf("%q: dialled %v, then refused: %v", in, dialled, err)
		}
		line := answerLine(err)
		if len(line) > nodeapi.MaxLinkLine+1 || strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") || strings.ContainsAny(line, "\r\x00\x1b") {
			t.Fatalf("%q: answer %q", in, line)
		}
	})
}
