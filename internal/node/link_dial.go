package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/gate"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/ns"
	"github.com/moatcloud/moat/internal/pipe"
)

// linkDialTimeout bounds the setup of one connection to one endpoint; a
// node that died unnoticed is found by the SSH keepalives sooner (< 3 s).
const linkDialTimeout = 5 * time.Second

// serve carries one connection accepted in a source container to an
// endpoint of its link.
func (m *links) serve(ctx context.Context, l *listener, client net.Conn) {
	l.accepted.Add(1)
	l.open.Add(1)
	defer l.open.Add(-1)
	if !m.hold(l.key.link, client) {
		l.failed.Add(1)
		client.Close()
		return
	}
	defer m.unhold(l.key.link, client)
	far, release, err := m.connectWith(ctx, l.key.link, &early{client: client, buf: sentAlready(client)})
	if err != nil {
		l.failed.Add(1)
		client.Close()
		m.log.Warn("link connection failed", "link", l.key.link, "container", l.key.container, "err", err)
		return
	}
	defer release()
	pipe.Join(client, far)
}

// connect reaches the least busy endpoint of the link, and the next ones
// in turn if it fails: what the client sent meanwhile is kept and sent
// to the next, so a failed try loses none of its bytes. release ends the
// connection's count.
func (m *links) connect(ctx context.Context, id string) (conn net.Conn, release func(), err error) {
	return m.connectWith(ctx, id, &early{})
}

// connectWith is connect, sending what the client sent meanwhile (first)
// to each endpoint tried as it is opened, until one takes the connection.
func (m *links) connectWith(ctx context.Context, id string, first *early) (conn net.Conn, release func(), err error) {
	m.mu.Lock()
	link, ok := m.byID[id]
	m.mu.Unlock()
	if !ok {
		return nil, nil, fmt.Errorf("link %s is gone: %w", id, errs.ErrNotFound)
	}
	if len(link.Endpoints) == 0 {
		return nil, nil, fmt.Errorf("link %s: no ready replica of %s: %w", id, link.Target, errs.ErrUnavailable)
	}
	tried := make([]bool, len(link.Endpoints))
	var failures []error
	for {
		m.mu.Lock()
		i := leastBusy(link.Endpoints, m.counts, tried, rand.IntN)
		if i >= 0 {
			m.counts[endpointKey(link.Endpoints[i])]++
		}
		m.mu.Unlock()
		if i < 0 {
			return nil, nil, fmt.Errorf("link %s: %w", id, errors.Join(failures...))
		}
		tried[i] = true
		e := link.Endpoints[i]
		dctx, cancel := context.WithTimeout(ctx, linkDialTimeout)
		conn, err := m.dial(dctx, link, e, first)
		cancel()
		key := endpointKey(e)
		if err == nil {
			return conn, func() { m.release(key) }, nil
		}
		m.release(key)
		failures = append(failures, fmt.Errorf("%s on %s: %w", e.Container, e.Node, err))
		if len(first.buf) > 0 && !errors.As(err, new(undelivered)) {
			// What the client sent may have reached the app (the stream
			// broke after the gate connected it, or the answer came too
			// late): sending it to another replica could do a request
			// twice, so the connection fails instead.
			return nil, nil, fmt.Errorf("link %s: %w (what the client sent may have arrived: no other replica is tried)", id, errors.Join(failures...))
		}
	}
}

// undelivered marks a failure that surely kept what the client sent from
// any app: nothing was connected (no session, no stream, no container),
// or the gate refused the stream, which it does before passing a byte on.
// Only after such a failure do the client's first bytes go to another
// replica.
type undelivered struct{ error }

func (u undelivered) Unwrap() error { return u.error }

func (m *links) release(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts[key]--; m.counts[key] <= 0 {
		delete(m.counts, key)
	}
}

func endpointKey(e nodeapi.LinkEndpoint) string { return e.Node + "/" + e.Container }

// leastBusy is the endpoint, among those not tried, with the fewest
// connections counted; ties are broken at random (rnd(n) in [0, n)), so
// that daemons starting together do not all pick the first. -1 when every
// endpoint has been tried.
func leastBusy(eps []nodeapi.LinkEndpoint, counts map[string]int, tried []bool, rnd func(int) int) int {
	best, least, ties := -1, 0, 0
	for i, e := range eps {
		if tried[i] {
			continue
		}
		n := counts[endpointKey(e)]
		switch {
		case best < 0 || n < least:
			best, least, ties = i, n, 1
		case n == least:
			ties++
			if rnd(ties) == 0 { // each of the tied is kept with probability 1/ties
				best = i
			}
		}
	}
	return best
}

// dial connects to one endpoint: straight into its network namespace if
// it runs here, else over SSH to its node's gate.
func (m *links) dial(ctx context.Context, link nodeapi.Link, e nodeapi.LinkEndpoint, first *early) (net.Conn, error) {
	if e.Addr != "" {
		return m.dialRemote(ctx, link, e, first)
	}
	conn, err := m.dialLocal(ctx, link.Target, link.Port, e.Container)
	if err != nil {
		return nil, undelivered{err}
	}
	if len(first.buf) == 0 {
		return conn, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetWriteDeadline(dl)
	}
	if _, err := conn.Write(first.buf); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// dialLocal reaches a replica on this node, checked as the gate checks a
// dial: running, a replica of the link's target, declaring the port.
func (m *links) dialLocal(ctx context.Context, target string, port int, name string) (net.Conn, error) {
	m.mu.Lock()
	c, ok := m.view[name]
	m.mu.Unlock()
	switch {
	case !ok:
		return nil, fmt.Errorf("no container %s on this node: %w", name, errs.ErrNotFound)
	case c.State != nodeapi.StateRunning || c.Pid == 0:
		return nil, fmt.Errorf("container %s is %s: %w", name, c.State, errs.ErrUnavailable)
	case c.Spec.Labels[gate.AppLabel] != target:
		return nil, fmt.Errorf("container %s is not a replica of %s: %w", name, target, errs.ErrForbidden)
	}
	declared := slices.ContainsFunc(c.Spec.Ports, func(p nodeapi.Port) bool {
		return p.Port == port && p.ProtocolOrTCP() == "tcp"
	})
	if !declared {
		return nil, fmt.Errorf("container %s does not declare tcp port %d: %w", name, port, errs.ErrForbidden)
	}
	return ns.DialLoopback(ctx, c.Pid, port)
}
