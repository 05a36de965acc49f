package sshx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/keepalive"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
)

// State of a held connection.
type State string

// States.
const (
	Connecting State = "connecting" // never up yet
	Up         State = "up"
	Down       State = "down" // was up, or failed; retrying
)

// Reconnect backoff: 100 ms doubling to 10 s, each wait ±20% so a master
// restarting does not hit every node in the same instant.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 10 * time.Second
)

// Conn is a held connection to one node.
type Conn struct {
	pool   *Pool
	target Target
	ctx    context.Context
	cancel context.CancelFunc
	http   *http.Client

	mu      sync.Mutex
	client  *ssh.Client
	heard   *keepalive.Heard // the last byte from the node, while up
	deliv   *Delivery        // the bytes client's socket carried (delivery.go)
	extra   []*overflow      // more connections, when sshd refuses sessions (overflow.go)
	state   State
	since   time.Time
	lastErr error
	changed chan struct{}
	ups     int64 // times it came up
}

func newConn(p *Pool, t Target) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{pool: p, target: t, ctx: ctx, cancel: cancel, state: Connecting, since: time.Now(), changed: make(chan struct{})}
	c.http = &http.Client{Transport: c.transport()}
	return c
}

// Name is the node's name.
func (c *Conn) Name() string { return c.target.Name }

// State reports the connection's state, since when, and the last error.
func (c *Conn) State() (State, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state, c.since, c.lastErr
}

// Quiet is how long nothing has come from the node; forever (the maximum
// duration) while the connection is not up. With keepalives every
// KeepaliveInterval on a quiet connection, a node that answers is never
// quiet much longer than that: past it, the node may be dying.
func (c *Conn) Quiet() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != Up || c.heard == nil {
		return math.MaxInt64
	}
	return c.heard.Quiet()
}

// Connects counts the times the connection came up: 1 + reconnects.
func (c *Conn) Connects() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ups
}

// RoundTrip is the last answered keepalive's round trip while up; 0 when
// not known (down, or busy enough never to be probed).
func (c *Conn) RoundTrip() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != Up || c.heard == nil {
		return 0
	}
	return c.heard.RoundTrip()
}

// Changed returns a channel closed at the next state change.
func (c *Conn) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *Conn) setState(s State, client *ssh.Client, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != s {
		if s == Up {
			c.ups++
		}
		c.since = time.Now()
		close(c.changed)
		c.changed = make(chan struct{})
	}
	c.state, c.client, c.lastErr = s, client, err
}

// Client waits until the connection is up and returns it.
func (c *Conn) Client(ctx context.Context) (*ssh.Client, error) {
	client, _, err := c.clientAndDelivery(ctx)
	return client, err
}

// clientAndDelivery is Client, with the connection's Delivery.
func (c *Conn) clientAndDelivery(ctx context.Context) (*ssh.Client, *Delivery, error) {
	for {
		c.mu.Lock()
		client, deliv, state, err, changed := c.client, c.deliv, c.state, c.lastErr, c.changed
		c.mu.Unlock()
		if state == Up {
			return client, deliv, nil
		}
		if errors.Is(err, sshkey.ErrHostKeyChanged) {
			// Retrying will not help until the node is enrolled again.
			return nil, nil, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return nil, nil, fmt.Errorf("node %s is %s: %w: %w", c.target.Name, state, err, errs.ErrUnavailable)
		case <-c.ctx.Done():
			return nil, nil, fmt.Errorf("node %s: connection closed: %w", c.target.Name, errs.ErrUnavailable)
		}
	}
}

// NodeAPI is a client of the node daemon's API, over the gate's rpc.
func (c *Conn) NodeAPI() *nodeapi.Client { return nodeapi.NewClient(c.http) }

// HTTP is an http.Client whose connections are rpc sessions on this node.
func (c *Conn) HTTP() *http.Client { return c.http }

func (c *Conn) close() {
	c.cancel()
	c.mu.Lock()
	client := c.client
	c.mu.Unlock()
	if client != nil {
		client.Close()
	}
	c.closeExtra()
	c.http.CloseIdleConnections()
}

// maintain connects, watches, and reconnects until the Conn is closed.
func (c *Conn) maintain() {
	log := c.pool.cfg.Log.With("node", c.target.Name)
	wait := backoffMin
	for c.ctx.Err() == nil {
		heard := keepalive.NewHeard()
		client, deliv, err := c.connect(c.ctx, heard)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			state, _, _ := c.State()
			if state == Up || errors.Is(err, sshkey.ErrHostKeyChanged) {
				log.Warn("node unreachable", "err", err)
			}
			c.setState(Down, nil, err)
			select {
			case <-time.After(jitter(wait)):
			case <-c.ctx.Done():
				return
			}
			wait = min(wait*2, backoffMax)
			continue
		}
		wait = backoffMin
		c.mu.Lock()
		c.heard, c.deliv = heard, deliv
		c.mu.Unlock()
		c.setState(Up, client, nil)
		log.Info("node up")
		err = keepalive.Watch(c.ctx, client, heard, keepalive.Config{
			Interval: c.pool.cfg.KeepaliveInterval, DownAfter: c.pool.cfg.DownAfter, Beat: c.pool.beat})
		if errors.Is(err, keepalive.ErrSilent) {
			// Dead: what its kernel acknowledged is read before the
			// sockets close, and will not change.
			c.freeze(heard.SilentSince())
		}
		client.Close()
		c.closeExtra()
		c.http.CloseIdleConnections()
		if c.ctx.Err() != nil {
			return
		}
		c.setState(Down, nil, err)
		log.Warn("node down", "err", err)
	}
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// connect dials and handshakes, holding a handshake slot. heard keeps the
// time of the last byte read from the node; the Delivery counts the bytes
// written to it.
func (c *Conn) connect(ctx context.Context, heard *keepalive.Heard) (*ssh.Client, *Delivery, error) {
	cfg := c.pool.cfg
	if err := c.pool.acquire(ctx); err != nil {
		return nil, nil, err
	}
	defer c.pool.release()
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	tcp, err := c.pool.dial(dctx, "tcp", c.target.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", c.target.Addr, err)
	}
	heard.Touch()
	deliv, tcp := newDelivery(tcp, cfg.KeepaliveInterval)
	tcp = newCoalescer(heard.Wrap(tcp)) // coalesce.go
	tcp.SetDeadline(time.Now().Add(cfg.DialTimeout))
	sc, chans, reqs, err := ssh.NewClientConn(tcp, c.target.Addr, c.clientConfig())
	if err != nil {
		tcp.Close()
		return nil, nil, fmt.Errorf("ssh handshake with %s: %w", c.target.Addr, err)
	}
	tcp.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), deliv, nil
}

// freeze reads, before they close, what the node's kernel acknowledged on
// each of its connections, the node found dead with its last sign of life
// at lastHeard (or later, on an overflow connection).
func (c *Conn) freeze(lastHeard time.Time) {
	c.mu.Lock()
	held := c.deliv
	extra := append([]*overflow(nil), c.extra...)
	c.mu.Unlock()
	held.freeze(lastHeard)
	for _, o := range extra {
		o.deliv.freeze(later(lastHeard, o.heard.SilentSince()))
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (c *Conn) clientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            c.target.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(c.pool.cfg.Signer)},
		HostKeyCallback: sshkey.PinnedHostKey(c.target.Name, c.target.HostKey),
		// Ask for the pinned key's type, so a node with several host keys
		// presents the one we know.
		HostKeyAlgorithms: sshkey.Algorithms(c.target.HostKey),
		Timeout:           c.pool.cfg.DialTimeout,
	}
}
