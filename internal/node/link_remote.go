package node

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/gate"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
)

// linkRemote holds a link's SSH connections, logged in with the link's
// own key (a pool has one key): one per node holding endpoints, each
// carrying one long-lived mux session whose streams are the link's
// connections, so a new connection costs neither a handshake nor a session.
type linkRemote struct {
	key   string
	pool  *sshx.Pool
	nodes map[string]*remoteNode
}

// remoteNode is a held connection to one target node.
type remoteNode struct {
	target sshx.Target
	conn   *sshx.Conn
	// streams counts the link connections it carries; a node with no
	// endpoint of the link left is retired, and closed with its last
	// stream (its connections drain). Both under links.mu.
	streams int
	retired bool

	mu      sync.Mutex
	sess    *yamux.Session
	opening chan struct{} // closed when the mux being opened is ready (or not)
}

// updateRemotes holds a connection to each node holding endpoints of a
// link, with the link's key, and lets go of the others. links.mu held.
func (m *links) updateRemotes() {
	for id, r := range m.remotes {
		if l, ok := m.byID[id]; !ok || l.Key != r.key {
			r.pool.Close() // the link or its key is gone: its connections with it
			delete(m.remotes, id)
		}
	}
	for id, l := range m.byID {
		targets := m.remoteTargets(l)
		r := m.remotes[id]
		if r == nil {
			if len(targets) == 0 {
				continue
			}
			signer, err := ssh.ParsePrivateKey([]byte(l.Key))
			if err != nil {
				m.log.Error("link key unusable", "link", id, "err", err)
				continue
			}
			r = &linkRemote{key: l.Key, nodes: map[string]*remoteNode{},
				pool: sshx.NewPool(sshx.Config{Signer: signer, Log: m.log.With("link", id)})}
			m.remotes[id] = r
		}
		for name, t := range targets {
			if n := r.nodes[name]; n != nil && sameTarget(n.target, t) {
				n.retired = false
				continue
			}
			r.nodes[name] = &remoteNode{target: t, conn: r.pool.Add(t)} // replaces (closes) an old one
		}
		for name, n := range r.nodes {
			if _, ok := targets[name]; !ok {
				n.retired = true
				r.drop(name, n)
			}
		}
	}
}

// drop closes a retired node's connection once it carries nothing.
// links.mu held.
func (r *linkRemote) drop(name string, n *remoteNode) {
	if n.retired && n.streams == 0 && r.nodes[name] == n {
		r.pool.Remove(name)
		delete(r.nodes, name)
	}
}

// remoteTargets are the nodes holding endpoints of l, as sshx targets.
func (m *links) remoteTargets(l nodeapi.Link) map[string]sshx.Target {
	out := map[string]sshx.Target{}
	for _, e := range l.Endpoints {
		if e.Addr == "" {
			continue
		}
		key, err := sshkey.ParsePublicKey(e.HostKey)
		if err != nil {
			m.log.Error("link endpoint's host key unusable", "link", l.ID, "node", e.Node, "err", err)
			continue
		}
		addr := e.Addr
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(addr, "22")
		}
		out[e.Node] = sshx.Target{Name: e.Node, Addr: addr, User: cmp.Or(e.User, "root"), HostKey: key}
	}
	return out
}

func sameTarget(a, b sshx.Target) bool {
	return a.Addr == b.Addr && a.User == b.User && bytes.Equal(a.HostKey.Marshal(), b.HostKey.Marshal())
}

// dialRemote opens a stream to an endpoint on another node, through the
// link's held connection to it.
func (m *links) dialRemote(ctx context.Context, l nodeapi.Link, e nodeapi.LinkEndpoint, first *early) (net.Conn, error) {
	m.mu.Lock()
	var n *remoteNode
	r := m.remotes[l.ID]
	if r != nil {
		n = r.nodes[e.Node]
	}
	if n != nil {
		n.streams++
	}
	m.mu.Unlock()
	if n == nil {
		return nil, undelivered{fmt.Errorf("no connection to node %s (see the log for why): %w", e.Node, errs.ErrUnavailable)}
	}
	done := func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		n.streams--
		r.drop(e.Node, n)
	}
	st, err := n.open(ctx, e.Container, first, n.conn.Quiet() > earlyQuiet)
	if err != nil {
		done()
		return nil, err
	}
	return &linkStream{Stream: st, done: done}, nil
}

// open opens a stream to a container on the node, sends what the client
// sent so far with the opening line (one frame: the gate reads the line
// byte by byte and passes the rest on once connected), and waits for the
// gate's answer, passing on what more the client sends meanwhile.
//
// With hold (the node has been quiet longer than its keepalives allow: it
// may be dying, and then whether the client's bytes reached the app could
// never be known) nothing of the client goes before the gate's answer, so
// any failure until then leaves it undelivered, free to go to another
// replica.
func (n *remoteNode) open(ctx context.Context, container string, first *early, hold bool) (*yamux.Stream, error) {
	sess, err := n.session(ctx)
	if err != nil {
		return nil, undelivered{err}
	}
	st, err := sess.OpenStream()
	if err != nil {
		return nil, undelivered{fmt.Errorf("node %s: %v: %w", n.target.Name, err, errs.ErrUnavailable)}
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if hold {
		err = openHeld(st, container, first)
	} else {
		err = openEarly(st, container, first)
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("node %s: %w", n.target.Name, err)
	}
	st.SetDeadline(time.Time{})
	return st, nil
}

// openEarly sends the opening line and what the client sent so far in one
// frame, and what more it sends while the gate answers. Only a refusal
// leaves those bytes surely undelivered.
func openEarly(st *yamux.Stream, container string, first *early) error {
	var opening bytes.Buffer
	nodeapi.WriteLinkOpen(&opening, container)
	opening.Write(first.buf)
	if _, err := st.Write(opening.Bytes()); err != nil {
		return err
	}
	return first.during(st, func() error {
		line, err := nodeapi.ReadLinkLine(st)
		if err != nil {
			return err
		}
		if err := nodeapi.LinkAnswer(line); err != nil {
			return undelivered{err} // refused before anything was passed on
		}
		return nil
	})
}

// openHeld sends the opening line alone and the client's bytes only once
// the gate said ok: every failure before leaves them undelivered.
func openHeld(st *yamux.Stream, container string, first *early) error {
	err := nodeapi.WriteLinkOpen(st, container)
	if err == nil {
		var line string
		if line, err = nodeapi.ReadLinkLine(st); err == nil {
			err = nodeapi.LinkAnswer(line)
		}
	}
	if err != nil {
		return undelivered{err}
	}
	if len(first.buf) > 0 {
		_, err = st.Write(first.buf)
	}
	return err
}

// session is the node's mux session, opened on first use and again after
// the SSH connection under it went down. A node known to be down fails at
// once, so the next endpoint is tried without waiting.
func (n *remoteNode) session(ctx context.Context) (*yamux.Session, error) {
	for {
		n.mu.Lock()
		if n.sess != nil && !n.sess.IsClosed() {
			s := n.sess
			n.mu.Unlock()
			return s, nil
		}
		if n.opening == nil {
			break // this caller opens it; n.mu still held
		}
		wait := n.opening
		n.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("node %s: %w: %w", n.target.Name, ctx.Err(), errs.ErrUnavailable)
		}
	}
	n.opening = make(chan struct{})
	n.mu.Unlock()
	sess, err := n.dialMux(ctx)
	n.mu.Lock()
	n.sess = sess
	close(n.opening)
	n.opening = nil
	n.mu.Unlock()
	return sess, err
}

func (n *remoteNode) dialMux(ctx context.Context) (*yamux.Session, error) {
	if state, _, err := n.conn.State(); state == sshx.Down {
		return nil, fmt.Errorf("node %s is down: %v: %w", n.target.Name, err, errs.ErrUnavailable)
	}
	c, err := n.conn.Open(ctx, nodeapi.LinkMux)
	if err != nil {
		return nil, err
	}
	sess, err := yamux.Client(c, muxConfig())
	if err != nil {
		c.Close()
		return nil, err
	}
	return sess, nil
}

// muxConfig is the gate's (both ends of a link session share it), but for
// how long a stream half-closed here may go on answering: without a
// limit, as a TCP connection would.
func muxConfig() *yamux.Config {
	c := gate.MuxConfig()
	c.StreamCloseTimeout = 0
	return c
}

// linkStream is a link connection's stream. yamux's Close sends FIN and
// leaves the stream readable until the far side's FIN: a half-close.
type linkStream struct {
	*yamux.Stream
	once sync.Once
	done func()
}

func (s *linkStream) CloseWrite() error { return s.Stream.Close() }

func (s *linkStream) Close() error {
	err := s.Stream.Close()
	s.once.Do(s.done)
	return err
}

// earlyQuiet: a node heard from within this long gets a connection's first
// bytes with its opening; one quiet for longer (two keepalive intervals)
// gets them only after the gate's answer (open's hold).
const earlyQuiet = 2 * sshx.DefaultKeepaliveInterval
