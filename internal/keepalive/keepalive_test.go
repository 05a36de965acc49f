package keepalive

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// pair connects an SSH client to an in-process server over loopback TCP
// whose server side can be frozen: while frozen the server reads nothing and
// sends nothing, like a peer powered off or a link gone dark.
type pair struct {
	client *ssh.Client
	heard  *Heard
	mu     sync.Mutex
	frozen bool
	probes int           // keepalive requests the server saw
	gone   chan struct{} // closed when the test ends
}

func newPair(t *testing.T) *pair {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cside, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sside, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sside.Close() })
	p := &pair{heard: NewHeard(), gone: make(chan struct{})}
	t.Cleanup(func() { close(p.gone) })
	go func() {
		cfg := &ssh.ServerConfig{NoClientAuth: true}
		cfg.AddHostKey(signer)
		_, chans, reqs, err := ssh.NewServerConn(freezable{sside, p}, cfg)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(nil)
		go func() {
			for c := range chans {
				c.Reject(ssh.Prohibited, "no channels")
			}
		}()
		for r := range reqs {
			p.mu.Lock()
			p.probes++
			p.mu.Unlock()
			r.Reply(false, nil) // as OpenSSH answers keepalive@openssh.com
		}
	}()
	conn, chans, reqs, err := ssh.NewClientConn(p.heard.Wrap(cside), "pipe", &ssh.ClientConfig{
		User: "t", HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.client = ssh.NewClient(conn, chans, reqs)
	t.Cleanup(func() { p.client.Close() })
	return p
}

func (p *pair) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

func (p *pair) seen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probes
}

// freezable blocks the server's reads while frozen; the server writes only
// in answer to what it reads, so it falls silent too.
type freezable struct {
	net.Conn
	p *pair
}

func (f freezable) Read(b []byte) (int, error) {
	n, err := f.Conn.Read(b)
	f.p.mu.Lock()
	frozen := f.p.frozen
	f.p.mu.Unlock()
	if frozen {
		// A dead peer: what arrived is never answered.
		<-f.p.gone
		return 0, io.EOF
	}
	return n, err
}

func TestQuietPeerIsProbedAndKept(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, p.client, p.heard, Config{Interval: 20 * time.Millisecond, DownAfter: time.Second})
	}()
	for deadline := time.Now().Add(10 * time.Second); p.seen() < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("%d probes in 10 s of quiet, want 5", p.seen())
		}
		select {
		case err := <-done:
			t.Fatalf("a peer answering its probes was given up: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Each answered probe's round trip is kept (the last).
	for deadline := time.Now().Add(10 * time.Second); p.heard.RoundTrip() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no round trip known after answered probes")
		}
	}
	if rtt := p.heard.RoundTrip(); rtt >= 10*time.Second {
		t.Errorf("round trip %s over loopback", rtt)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v", err)
	}
}

func TestSilentPeerIsGone(t *testing.T) {
	p := newPair(t)
	p.freeze()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- Watch(context.Background(), p.client, p.heard, Config{Interval: 20 * time.Millisecond, DownAfter: 300 * time.Millisecond})
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a frozen peer still counted as alive after 10 s")
	}
	if !errors.Is(err, ErrSilent) {
		t.Fatalf("a frozen peer: %v, want ErrSilent", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("given up after %s, before DownAfter", took)
	}
}

func TestBusyPeerIsNotProbed(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Bytes arrive all the time (Touch stands in for reads): no probe is
	// needed, and none is sent.
	beats := make(chan struct{})
	go func() {
		for i := 0; i < 50; i++ {
			p.heard.Touch()
			beats <- struct{}{}
		}
		cancel()
	}()
	beat := beatsFrom(ctx, beats)
	Watch(ctx, p.client, p.heard, Config{Interval: time.Second, DownAfter: 2 * time.Second, Beat: beat})
	if n := p.seen(); n != 0 {
		t.Errorf("%d probes to a peer heard from at every beat", n)
	}
	if rtt := p.heard.RoundTrip(); rtt != 0 {
		t.Errorf("round trip %s known without a probe", rtt)
	}
}

func TestClosedConnectionEndsWatch(t *testing.T) {
	p := newPair(t)
	go func() { p.client.Close() }()
	err := Watch(context.Background(), p.client, p.heard, Config{Interval: time.Hour, DownAfter: time.Hour})
	if err == nil || errors.Is(err, ErrSilent) {
		t.Errorf("a closed connection: %v", err)
	}
}

// TestHeardMonotonic: the last sign of life is kept on the monotonic clock
// (a step of the wall clock moves neither Quiet nor Last), and Last and
// Quiet agree.
func TestHeardMonotonic(t *testing.T) {
	h := NewHeard()
	last := h.Last()
	if !strings.Contains(last.String(), " m=") {
		t.Fatalf("Last() = %v has no monotonic reading: a wall clock step would move it", last)
	}
	q := h.Quiet()
	if since := time.Since(last); q < 0 || since < q || since-q > time.Second {
		t.Fatalf("Quiet() = %v, but Last() was %v ago", q, since)
	}
}

// TestStalledWatcher: a watch that ran late (its process stopped: no beat
// came) sent no probe meanwhile, so the peer's silence as probes tell
// (SilentSince) begins only then, though nothing was heard.
func TestStalledWatcher(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	beats := make(chan struct{})
	beat := beatsFrom(ctx, beats)
	cfg := Config{Interval: 50 * time.Millisecond, DownAfter: 200 * time.Millisecond, Beat: beat}
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, p.client, p.heard, cfg) }()
	for deadline := time.Now().Add(10 * time.Second); p.heard.Quiet() < 2*cfg.DownAfter; {
		if time.Now().After(deadline) {
			t.Fatal("the peer was heard from all along")
		}
		time.Sleep(10 * time.Millisecond) // the stall: time passing, no beat
	}
	resumed := time.Now()
	beats <- struct{}{}
	select {
	case err := <-done:
		if !errors.Is(err, ErrSilent) {
			t.Fatalf("watch ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch never looked again")
	}
	if since := p.heard.SilentSince(); since.Before(resumed) {
		t.Errorf("silent since %v before the watcher resumed, last heard %v ago", resumed.Sub(since), p.heard.Quiet())
	}
}

// beatsFrom is a Config.Beat driven by the test: each beat is a value
// sent on beats.
func beatsFrom(ctx context.Context, beats <-chan struct{}) func() <-chan struct{} {
	return func() <-chan struct{} {
		ch := make(chan struct{})
		go func() {
			select {
			case <-beats:
				close(ch)
			case <-ctx.Done():
			}
		}()
		return ch
	}
}
