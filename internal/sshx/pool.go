// Package sshx is the master's side of SSH. It holds one connection per
// node, checks it with keepalives so a dead node is noticed in seconds,
// reconnects with backoff and jitter, caps concurrent handshakes (sshd drops
// bursts past MaxStartups), and pins each node's host key. On top of a held
// connection it offers an http.Client over the gate's rpc, an SFTP client
// and dial.
package sshx

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults: a node from which nothing has arrived for 2.7 s is down. A
// keepalive goes out every 200 ms while the connection is otherwise quiet,
// so a node that dies is down 2.5 to 2.9 s later, and a link that stalls
// for up to 2 s (rented machines' links do, now and then), loses packets
// and delays them by a few hundred ms is not mistaken for a dead node.
const (
	DefaultKeepaliveInterval = 200 * time.Millisecond
	DefaultDownAfter         = 2700 * time.Millisecond
	DefaultMaxHandshakes     = 8
	DefaultDialTimeout       = 5 * time.Second
)

// Config configures a Pool.
type Config struct {
	Signer            ssh.Signer    // the master's key
	KeepaliveInterval time.Duration // how often a quiet connection is probed
	DownAfter         time.Duration // silence after which a node is down
	MaxHandshakes     int           // concurrent SSH handshakes, below sshd's MaxStartups (10)
	DialTimeout       time.Duration
	Log               *slog.Logger
}

func (c *Config) setDefaults() {
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if c.DownAfter <= 0 {
		c.DownAfter = DefaultDownAfter
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Target is a node to hold a connection to.
type Target struct {
	Name    string        // node name, in logs and errors
	Addr    string        // host:port
	User    string        // login user; the key is pinned to the gate there
	HostKey ssh.PublicKey // pinned at enrolment
}

// Pool holds the connections.
type Pool struct {
	cfg        Config
	handshakes chan struct{}
	dial       func(ctx context.Context, network, addr string) (net.Conn, error)

	mu    sync.Mutex
	conns map[string]*Conn

	beatOnce sync.Once
	beatMu   sync.Mutex
	beatCh   chan struct{} // closed at each keepalive beat
	closed   chan struct{}
}

// NewPool makes an empty pool.
func NewPool(cfg Config) *Pool {
	cfg.setDefaults()
	var d net.Dialer
	return &Pool{cfg: cfg, handshakes: make(chan struct{}, cfg.MaxHandshakes), dial: d.DialContext, conns: map[string]*Conn{},
		beatCh: make(chan struct{}), closed: make(chan struct{})}
}

// beat returns a channel closed at the next keepalive beat. One clock for
// the whole pool, not one per connection: the master's probes to all its
// nodes go out in one burst, so the process wakes once per interval rather
// than a thousand times, which halves its CPU when it holds many nodes.
func (p *Pool) beat() <-chan struct{} {
	p.beatOnce.Do(func() { go p.beats() })
	p.beatMu.Lock()
	defer p.beatMu.Unlock()
	return p.beatCh
}

func (p *Pool) beats() {
	tick := time.NewTicker(p.cfg.KeepaliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.closed:
			return
		case <-tick.C:
		}
		p.beatMu.Lock()
		close(p.beatCh)
		p.beatCh = make(chan struct{})
		p.beatMu.Unlock()
	}
}

// Add starts holding a connection to t (replacing any under that name) and
// returns it. The connection comes up in the background.
func (p *Pool) Add(t Target) *Conn {
	c := newConn(p, t)
	p.mu.Lock()
	old := p.conns[t.Name]
	p.conns[t.Name] = c
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
	go c.maintain()
	return c
}

// Get returns the connection to a node.
func (p *Pool) Get(name string) (*Conn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.conns[name]
	return c, ok
}

// Remove stops holding the connection to a node.
func (p *Pool) Remove(name string) {
	p.mu.Lock()
	c := p.conns[name]
	delete(p.conns, name)
	p.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[string]*Conn{}
	p.mu.Unlock()
	p.beatMu.Lock()
	select {
	case <-p.closed:
	default:
		close(p.closed)
	}
	p.beatMu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// acquire takes a handshake slot.
func (p *Pool) acquire(ctx context.Context) error {
	select {
	case p.handshakes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pool) release() { <-p.handshakes }
