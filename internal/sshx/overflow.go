package sshx

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/keepalive"
)

// Overflow connections: sshd allows MaxSessions sessions per connection
// (10 by default), and each dial is a session of its own. When sshd
// refuses one more on the held connection, the session opens on another
// connection to the same node, opened for that and closed with its last
// session. They are not watched by keepalives: the held connection says
// whether the node is up, and its going down closes them all.

// overflow is one extra connection and the sessions open on it.
type overflow struct {
	client   *ssh.Client
	heard    *keepalive.Heard
	deliv    *Delivery
	sessions int
}

// newSession opens a session on the held connection, or, when sshd
// refuses one more there, on an overflow connection. release is called
// once when the session closes; deliv is the Delivery of the connection
// it is on.
func (c *Conn) newSession(ctx context.Context, client *ssh.Client, held *Delivery) (sess *ssh.Session, deliv *Delivery, release func(), err error) {
	sess, err = client.NewSession()
	var refused *ssh.OpenChannelError
	if !errors.As(err, &refused) {
		return sess, held, func() {}, err
	}
	// An overflow connection with room: each is reserved (counted) before
	// asking, so that its last session closing meanwhile cannot close it
	// under the new one, and nothing waits on the network under c.mu.
	c.mu.Lock()
	open := append([]*overflow(nil), c.extra...)
	for _, o := range open {
		o.sessions++
	}
	c.mu.Unlock()
	var got *ssh.Session
	var gotOn *overflow
	for _, o := range open {
		if gotOn == nil {
			if s, err := o.client.NewSession(); err == nil {
				got, gotOn = s, o
				continue
			}
		}
		c.releaser(o)()
	}
	if gotOn != nil {
		return got, gotOn.deliv, c.releaser(gotOn), nil
	}
	heard := keepalive.NewHeard()
	extra, extraDeliv, err := c.connect(ctx, heard)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("node %s: sshd refused another session on the master's connection (%s) and another connection failed: %w: %w",
			c.target.Name, refused.Message, err, errs.ErrUnavailable)
	}
	s, err := extra.NewSession()
	if err != nil {
		extra.Close()
		return nil, nil, nil, fmt.Errorf("node %s: sshd refused another session on the master's connection (%s) and on a new one (%v; sshd allows MaxSessions per connection, 10 by default): %w",
			c.target.Name, refused.Message, err, errs.ErrUnavailable)
	}
	o := &overflow{client: extra, heard: heard, deliv: extraDeliv, sessions: 1}
	c.mu.Lock()
	if c.ctx.Err() != nil || c.client != client {
		// Closed or reconnected meanwhile: this connection is nobody's.
		c.mu.Unlock()
		s.Close()
		extra.Close()
		return nil, nil, nil, fmt.Errorf("node %s: the connection changed while a session opened: %w", c.target.Name, errs.ErrUnavailable)
	}
	c.extra = append(c.extra, o)
	c.mu.Unlock()
	return s, extraDeliv, c.releaser(o), nil
}

// releaser is what a session on o does when it closes: the last one
// closes o.
func (c *Conn) releaser(o *overflow) func() {
	return func() {
		c.mu.Lock()
		o.sessions--
		last := o.sessions == 0
		if last {
			for i, x := range c.extra {
				if x == o {
					c.extra = append(c.extra[:i], c.extra[i+1:]...)
					break
				}
			}
		}
		c.mu.Unlock()
		if last {
			o.client.Close()
		}
	}
}

// closeExtra closes every overflow connection (the held one went down or
// the Conn is closed): their sessions end.
func (c *Conn) closeExtra() {
	c.mu.Lock()
	extra := c.extra
	c.extra = nil
	c.mu.Unlock()
	for _, o := range extra {
		o.client.Close()
	}
}

// Connections is how many SSH connections to the node are open: the held
// one (when up) and the overflow ones.
func (c *Conn) Connections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.extra)
	if c.client != nil {
		n++
	}
	return n
}
