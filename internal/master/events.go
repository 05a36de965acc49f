package master

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/broadcast"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshx"
)

// The event log: what happened to nodes and apps (up, down, deploys,
// rollbacks, restarts, OOM kills, alerts, metrics lost), kept in the
// database (bounded: store.MaxEvents, store.EventsMaxAge) and followed by
// moat events --follow.
//
// RecordEvent only queues: the reconciler, agents and the puller call it
// on their way and must not wait for the disk. One writer goroutine
// (started by Run) appends what is queued in one transaction per batch,
// then publishes on a broadcast signal that followers wait on.

// eventQueueMax bounds the events waiting for the writer; beyond it new
// ones are dropped and counted (the disk is stuck, or something records
// in a loop).
const eventQueueMax = 10_000

// eventPruneEvery: the log is pruned to its bounds after this many
// appended events (and once when the master starts).
const eventPruneEvery = 1000

// eventLog is the master's event log's writing end. The zero value
// queues; run writes.
type eventLog struct {
	mu      sync.Mutex
	queue   []store.Event
	wake    chan struct{} // one pending wake-up for the writer
	once    sync.Once
	dropped atomic.Int64
	written atomic.Int64
	changed broadcast.Signal // published after each batch is committed
	done    chan struct{}    // closed when run returns
}

func (l *eventLog) init() {
	l.once.Do(func() {
		l.wake = make(chan struct{}, 1)
		l.done = make(chan struct{})
	})
}

// RecordEvent logs an event: its Time is now when zero; App is the app's
// key in the store (store.AppKey: "tenant.app", or the name alone in the
// default tenant), which decides who sees it. It never waits for the
// database: the event is queued for the log's writer, and dropped (and
// counted) when thousands already wait.
func (m *Master) RecordEvent(e masterapi.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	row := store.Event{Time: e.Time.UTC(), Kind: e.Kind, Node: e.Node, App: e.App, Replica: e.Replica, Revision: e.Revision, Message: boundMessage(e.Message)}
	if e.App != "" {
		row.Tenant = keyTenant(e.App)
	}
	l := &m.events
	l.init()
	l.mu.Lock()
	if len(l.queue) >= eventQueueMax {
		l.mu.Unlock()
		if l.dropped.Add(1) == 1 {
			m.log.Error("event log: the queue is full; events are dropped", "kind", e.Kind, "node", e.Node, "app", e.App)
		}
		return
	}
	l.queue = append(l.queue, row)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// startEvents starts the event log's writer and the metrics cursors'
// (metrics_pull.go) for Run, and returns what stops them, once they have
// written what was waiting.
func (m *Master) startEvents(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	m.events.init()
	cursorsDone := make(chan struct{})
	go m.runEvents(ctx)
	go m.runCursors(ctx, cursorsDone)
	return func() {
		cancel()
		<-m.events.done
		<-cursorsDone
	}
}

// runEvents writes queued events until ctx ends, and what is queued then.
func (m *Master) runEvents(ctx context.Context) {
	l := &m.events
	l.init()
	defer close(l.done)
	if n, err := m.db.PruneEvents(ctx, store.MaxEvents, store.EventsMaxAge); err != nil {
		m.log.Warn("event log", "err", err)
	} else if n > 0 {
		m.log.Info("event log pruned", "removed", n)
	}
	for {
		select {
		case <-l.wake:
			m.writeEvents(ctx)
		case <-ctx.Done():
			// What was recorded on the way out (nodes going down as the
			// master stops) is still written.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			m.writeEvents(wctx)
			cancel()
			return
		}
	}
}

func (m *Master) writeEvents(ctx context.Context) {
	l := &m.events
	l.mu.Lock()
	batch := l.queue
	l.queue = nil
	l.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if _, err := m.db.AddEvents(ctx, batch); err != nil {
		m.log.Error("event log: events not written", "events", len(batch), "err", err)
		return
	}
	if d := l.dropped.Swap(0); d > 0 {
		m.log.Error("event log: events were dropped while the queue was full", "dropped", d)
	}
	before := l.written.Load()
	after := l.written.Add(int64(len(batch)))
	if before/eventPruneEvery != after/eventPruneEvery {
		if _, err := m.db.PruneEvents(ctx, store.MaxEvents, store.EventsMaxAge); err != nil {
			m.log.Warn("event log", "err", err)
		}
	}
	l.changed.Publish()
}

// eventQuery is the store's query for a caller's: its tenant's apps only
// (every tenant's for a caller who sees them all), and nodes' own events
// when nodes (the caller may list nodes).
func (m *Master) eventQuery(ctx context.Context, q masterapi.EventQuery, nodes bool) (store.EventQuery, error) {
	sq := store.EventQuery{After: q.After, Node: q.Node, Limit: q.Limit, Nodes: nodes}
	if c, ok := access.CallerFrom(ctx); !ok || c.Tenant != AllTenants {
		sq.Tenant = callerTenant(ctx)
	}
	if q.App != "" {
		sq.App = appKey(ctx, q.App)
	}
	if q.Since != "" {
		t, err := masterapi.ParseSince(q.Since, time.Now())
		if err != nil {
			return sq, err
		}
		sq.Since = t
	}
	switch {
	case sq.Limit < 0 || sq.Limit > masterapi.MaxEventLimit:
		return sq, errs.Invalid("limit", "%d: want 1 to %d events", q.Limit, masterapi.MaxEventLimit)
	case sq.Limit == 0:
		sq.Limit = masterapi.DefaultEventLimit
	}
	return sq, nil
}

func apiEvent(e store.Event) masterapi.Event {
	out := masterapi.Event{ID: e.ID, Time: e.Time, Kind: e.Kind, Node: e.Node, Replica: e.Replica, Revision: e.Revision, Message: e.Message}
	if e.App != "" {
		out.App = appName(e.App)
		if t := keyTenant(e.App); t != store.DefaultTenant {
			out.Tenant = t
		}
	}
	return out
}

// Events reads the event log as the caller may see it, oldest first: the
// newest q.Limit of those selected.
func (m *Master) Events(ctx context.Context, q masterapi.EventQuery, nodes bool) ([]masterapi.Event, error) {
	sq, err := m.eventQuery(ctx, q, nodes)
	if err != nil {
		return nil, err
	}
	rows, err := m.db.Events(ctx, sq)
	if err != nil {
		return nil, err
	}
	out := make([]masterapi.Event, 0, len(rows))
	for _, e := range rows {
		out = append(out, apiEvent(e))
	}
	return out, nil
}

// followPage bounds the events one read of a follow takes.
const followPage = 1000

// FollowEvents calls fn with the events Events would answer, then with
// each new one the caller may see as it is logged, until ctx ends (nil)
// or fn fails.
func (m *Master) FollowEvents(ctx context.Context, q masterapi.EventQuery, nodes bool, fn func(masterapi.Event) error) error {
	sq, err := m.eventQuery(ctx, q, nodes)
	if err != nil {
		return err
	}
	l := &m.events
	_, changed := l.changed.Gen()
	// Where the log stands now: what the first read does not reach is
	// read by the ones after, oldest first.
	head, err := m.db.LastEventID(ctx)
	if err != nil {
		return err
	}
	first := sq
	first.Before = head + 1
	rows, err := m.db.Events(ctx, first)
	if err != nil {
		return err
	}
	last := max(head, sq.After)
	for _, e := range rows {
		if err := fn(apiEvent(e)); err != nil {
			return err
		}
	}
	sq.Limit, sq.Oldest = followPage, true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		_, changed = l.changed.Gen()
		for {
			sq.After = last
			rows, err := m.db.Events(ctx, sq)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("follow the event log: %w", err)
			}
			for _, e := range rows {
				if err := fn(apiEvent(e)); err != nil {
					return err
				}
				last = e.ID
			}
			if len(rows) < followPage {
				break
			}
		}
	}
}

// noteState records the node's connection coming up or going down, once
// per change (a connection that keeps failing is one node-down). Nothing
// is recorded while the master stops. The agent's run goroutine only.
func (a *agent) noteState(ctx context.Context, s sshx.State, err error) {
	if ctx.Err() != nil || (s != sshx.Up && s != sshx.Down) || s == a.noted {
		return
	}
	e := masterapi.Event{Kind: masterapi.EventNodeUp, Node: a.name, Message: "connected"}
	if s == sshx.Down {
		e.Kind, e.Message = masterapi.EventNodeDown, "unreachable"
		if a.noted == sshx.Up {
			e.Message = "connection lost"
		}
		if err != nil {
			e.Message += ": " + err.Error()
		}
	}
	a.noted = s
	a.deps.event(e)
}

// containerEvents records what a node's newer report of a container says
// happened since the one before: restarts, an OOM kill. The replica's app
// is the master's record of it, not what the node says (a node's reports
// are not trusted to name another tenant's app); a container the master
// has no replica of on this node records nothing.
func (a *agent) containerEvents(old, c nodeapi.Container) {
	restarted := c.Restarts > old.Restarts
	oom := c.OOMKilled && (!old.OOMKilled || !c.Finished.Equal(old.Finished))
	if !restarted && !oom {
		return
	}
	// Within the node's budget (event_budget.go), before the database is
	// read: a node's stream is not trusted to be sparing.
	ok, dropped := a.reportEvents.take(time.Now())
	switch {
	case !ok && dropped == 1:
		a.log.Warn("node reports more restarts and OOM kills than the event log takes from a node; the rest are counted, not recorded")
	case ok && dropped > 0:
		a.log.Warn("restarts and OOM kills reported by the node not recorded in the event log", "count", dropped)
	}
	if !ok {
		return
	}
	r, ok, err := a.deps.replica(a.deps.ctx, c.ID)
	if err != nil || !ok || r.Node != a.name {
		return
	}
	e := masterapi.Event{Node: a.name, App: r.App, Replica: c.ID, Revision: r.Revision}
	if oom {
		e.Kind = masterapi.EventOOM
		e.Message = "killed for memory"
		if lim := c.Spec.Resources.MemoryBytes; lim > 0 {
			e.Message += fmt.Sprintf(" (limit %d MiB)", lim>>20)
		}
		a.deps.event(e)
	}
	if restarted {
		e.Kind = masterapi.EventRestart
		e.Message = fmt.Sprintf("restarted (%d in all)", c.Restarts)
		switch {
		case c.OOMKilled:
			e.Message += " after an OOM kill"
		case c.Signal != "":
			e.Message += " after signal " + c.Signal
		case c.ExitCode != nil:
			e.Message += fmt.Sprintf(" after exit code %d", *c.ExitCode)
		}
		a.deps.event(e)
	}
}

// revisionEvent records a revision made: a deploy, scale or rollback
// (from its cause).
func (m *Master) revisionEvent(rev store.Revision, actor string) {
	kind := masterapi.EventDeploy
	switch {
	case strings.HasPrefix(rev.Cause, "scale"):
		kind = masterapi.EventScale
	case strings.Contains(rev.Cause, "rollback"):
		kind = masterapi.EventRollback
	}
	msg := rev.Cause
	if actor != "" {
		msg += " by " + actor
	}
	m.RecordEvent(masterapi.Event{Kind: kind, App: rev.App, Revision: rev.Revision, Message: msg})
}

// Kinds by their names here, for files that need no more of masterapi.
const (
	eventDeployed     = masterapi.EventDeployed
	eventDeployFailed = masterapi.EventDeployFailed
)

// appEvent records an event of an app's revision (app: its key).
func (m *Master) appEvent(kind, app string, rev int, msg string) {
	m.RecordEvent(masterapi.Event{Kind: kind, App: app, Revision: rev, Message: msg})
}
