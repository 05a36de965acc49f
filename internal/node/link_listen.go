package node

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/moatcloud/moat/internal/gate"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/ns"
)

// linkRetry is how long a listener that could not open (LOCAL taken
// inside the container, say) waits before the next try. Nothing else is
// polled: listeners follow the daemon's container events and the table.
const linkRetry = 2 * time.Second

// listenerKey is one link's listener in one source container.
type listenerKey struct{ link, container string }

// listener is a link's 127.0.0.1:LOCAL inside one run of a container (a
// new run is a new network namespace: pid tells them apart).
type listener struct {
	key     listenerKey
	pid     int
	local   int
	ln      net.Listener // nil while it cannot be opened
	failing string       // why not, logged once
	open    atomic.Int64
	// accepted and failed count since the listener opened.
	accepted, failed atomic.Int64
}

// run follows the daemon's container events and the table, keeping one
// listener per link and running source container, until ctx ends.
func (m *links) run(ctx context.Context) {
	for ctx.Err() == nil {
		ch, unsubscribe := m.subscribe()
		m.resync(m.list())
		m.follow(ctx, ch)
		unsubscribe()
	}
	m.closeAll()
}

// follow reconciles after each batch of events, table change or retry,
// until the event stream drops this subscriber (it fell behind: run lists
// the containers again) or ctx ends.
func (m *links) follow(ctx context.Context, ch <-chan nodeapi.Event) {
	for {
		var retry <-chan time.Time
		if m.reconcile(ctx) {
			retry = time.After(linkRetry)
		}
		select {
		case e, ok := <-ch:
			if !ok {
				return
			}
			m.see(e)
			for more := true; more; {
				select {
				case e, ok := <-ch:
					if !ok {
						return
					}
					m.see(e)
				default:
					more = false
				}
			}
		case <-m.kick:
		case <-retry:
		case <-ctx.Done():
			return
		}
	}
}

// resync replaces the view of the containers with a fresh list.
func (m *links) resync(cs []nodeapi.Container) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.view = make(map[string]nodeapi.Container, len(cs))
	for _, c := range cs {
		m.view[c.ID] = c
	}
}

// see applies one event; a report older than the one held (the list and
// the subscription overlap) is ignored.
func (m *links) see(e nodeapi.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case e.Type == "removed":
		delete(m.view, e.ID)
	case e.Container != nil:
		if old, ok := m.view[e.Container.ID]; !ok || e.Container.Seq >= old.Seq {
			m.view[e.Container.ID] = *e.Container
		}
	}
}

// reconcile opens the listeners wanted and closes the others. It reports
// whether one could not open and should be tried again later.
func (m *links) reconcile(ctx context.Context) (retry bool) {
	// Listeners are opened without the lock, which every link connection
	// takes: opening many (a thread and a setns each) must not stall them.
	type opened struct {
		l   *listener
		ln  net.Listener
		err error
	}
	var results []opened
	for _, l := range m.stale() {
		ln, err := ns.ListenLoopback(l.pid, l.local)
		results = append(results, opened{l, ln, err})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range results {
		l, k := r.l, r.l.key
		if m.listeners[k] != l { // gone or replaced meanwhile
			if r.ln != nil {
				r.ln.Close()
			}
			continue
		}
		if r.err != nil {
			if l.failing != r.err.Error() {
				l.failing = r.err.Error()
				m.log.Warn("link listener not open", "link", k.link, "container", k.container, "local", l.local, "err", r.err)
			}
			retry = retry || !errors.Is(r.err, ns.ErrHostNetwork) // a container on the host's network: never
			continue
		}
		l.ln, l.failing = r.ln, ""
		m.log.Info("link listener open", "link", k.link, "container", k.container, "local", l.local)
		go m.accept(ctx, l, r.ln)
	}
	return retry
}

// stale closes the listeners no longer wanted (the link or the container
// went, or the container runs again with another pid) and returns those
// wanted but not open.
func (m *links) stale() []*listener {
	m.mu.Lock()
	defer m.mu.Unlock()
	type wanted struct{ pid, local int }
	want := map[listenerKey]wanted{}
	for _, l := range m.table.Links {
		// The edge's links have no listener: no container, even one
		// labelled moat.app=moat_edge, gets one.
		if l.Source == nodeapi.EdgeSource || l.Local == 0 {
			continue
		}
		for _, c := range m.view {
			if c.State == nodeapi.StateRunning && c.Pid != 0 && c.Spec.Labels[gate.AppLabel] == l.Source {
				want[listenerKey{l.ID, c.ID}] = wanted{c.Pid, l.Local}
			}
		}
	}
	for k, l := range m.listeners {
		if w, ok := want[k]; !ok || w.pid != l.pid || w.local != l.local {
			if l.ln != nil {
				l.ln.Close()
				m.log.Info("link listener closed", "link", k.link, "container", k.container, "local", l.local)
			}
			delete(m.listeners, k)
		}
	}
	var open []*listener
	for k, w := range want {
		l := m.listeners[k]
		if l == nil {
			l = &listener{key: k, pid: w.pid, local: w.local}
			m.listeners[k] = l
		}
		if l.ln == nil {
			open = append(open, l)
		}
	}
	return open
}

func (m *links) closeAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, l := range m.listeners {
		if l.ln != nil {
			l.ln.Close()
		}
		delete(m.listeners, k)
	}
	for id, r := range m.remotes {
		r.pool.Close()
		delete(m.remotes, id)
	}
}

// accept serves a listener's connections until it is closed.
func (m *links) accept(ctx context.Context, l *listener, ln net.Listener) {
	wait := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, say: as net/http does, wait a
			// little longer each time rather than spin.
			time.Sleep(wait)
			wait = min(2*wait, time.Second)
			continue
		}
		wait = 5 * time.Millisecond
		go m.serve(ctx, l, c)
	}
}
