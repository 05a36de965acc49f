package master

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
	"github.com/moatcloud/moat/internal/sshx"
)

// agent is the master's view of one node: the held connection, the
// containers the node reports (through its event stream), the lease, and
// the operations under way there.
type agent struct {
	deps *agentDeps
	name string
	conn *sshx.Conn
	api  *nodeapi.Client
	log  *slog.Logger
	stop context.CancelFunc

	mu         sync.Mutex
	containers map[string]nodeapi.Container
	shared     bool      // a view holds containers: copy before changing
	synced     bool      // containers is current
	leased     time.Time // last successful lease renewal
	inflight   map[string]bool
	lastErr    map[string]string // per replica: why its last operation failed
	refused    map[string]bool   // per replica: the node refused it for good (an image it will not run)

	keptVersion atomic.Pointer[string] // of the keep list last sent (renew and GC both set it)
	infoAt      time.Time              // when the node last described itself
	info        nodeapi.NodeInfo       // what it said
	infoWake    chan struct{}          // its images changed: renew, and ask it again, now
	links       linkPush               // the node's link table (links.go)
	edgeNode    atomic.Bool            // the node said it is an edge (edge_cache.go pulls only those)
	noted       sshx.State             // the connection's state last recorded in the event log (run's goroutine only; events.go)
	pull        pullStats              // the metrics puller's figures (metrics_pull.go)

	// restarts and OOM kills the node's reports may record (event_budget.go)
	reportEvents eventBudget
}

// agentDeps is what agents need from the master, and all they reach: the
// master's lifetime, its lease, the bound on node operations, and a few
// functions. One for all agents.
type agentDeps struct {
	ctx         context.Context // the master's: operations end with it
	leaseTTL    time.Duration
	ops         chan struct{} // node operations (create, start, stop) at once, across agents
	kick        func()        // a reconcile pass is owed
	saveInfo    func(ctx context.Context, node string, info store.NodeInfo) error
	specOf      func(store.Revision) (spec.App, error)
	deliver     func(ctx context.Context, node, manifest, name string) error
	keep        func(ctx context.Context) (keepList, error)
	secrets     func(ctx context.Context, app string, sp spec.App) ([]nodeapi.SecretMount, error) // envelopes for a replica
	edge        *edgeCaches                                                                       // the edges' shared certificate cache (edge_cache.go)
	event       func(masterapi.Event)                                                             // the event log (events.go)
	replica     func(ctx context.Context, id string) (store.Replica, bool, error)                 // the master's record of a replica
	pullMetrics func(ctx context.Context, a *agent)                                               // the metrics puller (metrics_pull.go)
}

// agentDeps is built once, when the master opens.
func (m *Master) agentDeps() *agentDeps {
	return &agentDeps{ctx: m.ctx, leaseTTL: m.cfg.LeaseTTL, ops: m.ops, kick: m.kickReconcile,
		saveInfo: m.db.SetNodeInfo, specOf: m.specOf, deliver: m.delivery.Ensure, keep: m.keep, secrets: m.secretMounts,
		edge: newEdgeCaches(m.db, m.log), event: m.RecordEvent, replica: m.db.Replica, pullMetrics: m.pullMetrics}
}

// infoEvery: nodes describe themselves again this often, so disk use in
// moat node ls stays current.
const infoEvery = time.Minute

func (m *Master) startAgent(n store.Node) error {
	target, err := enrolled(n).Target()
	if err != nil {
		return err
	}
	conn := m.pool.Add(target)
	ctx, cancel := context.WithCancel(m.ctx)
	a := &agent{
		deps: m.deps, name: n.Name, conn: conn, api: conn.NodeAPI(), log: m.log.With("node", n.Name), stop: cancel,
		infoWake: make(chan struct{}, 1),
		inflight: map[string]bool{}, lastErr: map[string]string{}, refused: map[string]bool{},
	}
	m.mu.Lock()
	if old := m.agents[n.Name]; old != nil {
		old.stop()
	}
	m.agents[n.Name] = a
	m.mu.Unlock()
	m.delivery.Forget(n.Name) // registered again: perhaps another machine
	go a.run(ctx)
	return nil
}

func (m *Master) stopAgent(name string) {
	m.mu.Lock()
	a := m.agents[name]
	delete(m.agents, name)
	m.mu.Unlock()
	if a != nil {
		a.stop()
		m.pool.Remove(name)
		m.delivery.Forget(name)
	}
}

// run follows the connection: while it is up, the node's events are
// watched and its lease renewed.
func (a *agent) run(ctx context.Context) {
	for ctx.Err() == nil {
		changed := a.conn.Changed()
		state, _, err := a.conn.State()
		a.noteState(ctx, state, err)
		if state != sshx.Up {
			a.setSynced(false, nil)
			a.deps.kick()
			select {
			case <-changed:
			case <-ctx.Done():
			}
			continue
		}
		session, cancel := context.WithCancel(ctx)
		go a.renew(session)
		go a.watch(session)
		go a.edgeCache(session)
		go a.deps.pullMetrics(session, a)
		for state == sshx.Up && ctx.Err() == nil {
			select {
			case <-changed:
			case <-ctx.Done():
			}
			changed = a.conn.Changed()
			state, _, err = a.conn.State()
			a.noteState(ctx, state, err)
		}
		cancel()
	}
}

// renew keeps the master's lease on the node, five times per TTL, and
// refreshes what the node says about itself after the first renewal: in
// turn, so both share one rpc session (the master holds thousands).
func (a *agent) renew(ctx context.Context) {
	every := max(a.deps.leaseTTL/5, 200*time.Millisecond)
	infoDue := true
	for {
		rctx, cancel := context.WithTimeout(ctx, every)
		err := a.api.Renew(rctx, a.deps.leaseTTL)
		cancel()
		if err == nil {
			a.mu.Lock()
			a.leased = time.Now()
			a.mu.Unlock()
		}
		if infoDue || time.Since(a.infoAt) > infoEvery {
			infoDue = !a.refreshInfo(ctx, every)
		}
		a.syncKeep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-a.infoWake:
			infoDue = true
		case <-time.After(every):
		}
	}
}

// watch keeps containers current from the node's event stream, which opens
// with a snapshot; a broken stream is opened again.
func (a *agent) watch(ctx context.Context) {
	for ctx.Err() == nil {
		snapshot := map[string]nodeapi.Container{}
		inSnapshot := true
		err := a.api.Events(ctx, func(e nodeapi.Event) {
			switch {
			case e.Type == "synced":
				a.log.Debug("event stream synced", "containers", len(snapshot))
				a.setSynced(true, snapshot)
				inSnapshot = false
			case inSnapshot && e.Container != nil:
				snapshot[e.Container.ID] = *e.Container
			case e.Type == "container" && e.Container != nil:
				a.mu.Lock()
				old, had := a.containers[e.Container.ID]
				if !had || old.Seq <= e.Container.Seq {
					a.writable()[e.Container.ID] = *e.Container
				}
				a.mu.Unlock()
				if had && old.Seq <= e.Container.Seq {
					a.containerEvents(old, *e.Container) // restarts, OOM kills (events.go)
				}
			case e.Type == "removed":
				a.mu.Lock()
				delete(a.writable(), e.ID)
				a.mu.Unlock()
			}
			a.deps.kick()
		})
		a.setSynced(false, nil)
		if ctx.Err() == nil {
			a.log.Debug("event stream broke; resubscribing", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

func (a *agent) setSynced(synced bool, containers map[string]nodeapi.Container) {
	a.mu.Lock()
	a.synced, a.containers, a.shared = synced, containers, false
	a.mu.Unlock()
	if !synced {
		a.forgetLinksSent()
	}
}

// writable returns the containers map to change: a copy if a view holds
// the current one, which views share rather than copy (the reconciler
// takes a view of every node at every pass). a.mu held.
func (a *agent) writable() map[string]nodeapi.Container {
	if a.shared {
		a.containers, a.shared = maps.Clone(a.containers), false
	}
	if a.containers == nil {
		a.containers = map[string]nodeapi.Container{}
	}
	return a.containers
}

// view is what the reconciler reads of an agent.
type view struct {
	name       string
	state      sshx.State
	since      time.Time
	err        error
	synced     bool
	leased     time.Time
	containers map[string]nodeapi.Container
	inflight   map[string]bool
	lastErr    map[string]string
	refused    map[string]bool
}

func (a *agent) view() view {
	state, since, err := a.conn.State()
	a.mu.Lock()
	defer a.mu.Unlock()
	v := view{name: a.name, state: state, since: since, err: err, synced: a.synced && state == sshx.Up, leased: a.leased,
		containers: a.containers} // shared: not to be changed (see writable)
	a.shared = true
	// Empty maps stay nil: the reconciler takes a view of every node each
	// round, and with a thousand nodes the allocations are what it costs.
	if len(a.inflight) > 0 {
		v.inflight = maps.Clone(a.inflight)
	}
	if len(a.lastErr) > 0 {
		v.lastErr = maps.Clone(a.lastErr)
	}
	if len(a.refused) > 0 {
		v.refused = maps.Clone(a.refused)
	}
	return v
}

// do runs an operation for a replica unless one is under way, and wakes
// the reconciler when it ends.
func (a *agent) do(id, what string, f func(context.Context) error) {
	a.mu.Lock()
	if a.inflight[id] {
		a.mu.Unlock()
		return
	}
	a.inflight[id] = true
	a.mu.Unlock()
	go func() {
		// A bounded number at once: ten thousand creates at once only
		// starve the reconciler and the database of the CPU they need.
		a.deps.ops <- struct{}{}
		defer func() { <-a.deps.ops }()
		ctx, cancel := context.WithTimeout(a.deps.ctx, 5*time.Minute)
		defer cancel()
		t0 := time.Now()
		err := f(ctx)
		a.log.Debug("operation done", "replica", id, "op", what, "took", time.Since(t0).Round(time.Millisecond), "err", err)
		a.mu.Lock()
		delete(a.inflight, id)
		if err != nil {
			a.lastErr[id] = what + ": " + err.Error()
			// Refusing the image is the node's policy, not bad luck:
			// trying again changes nothing.
			if errors.Is(err, errs.ErrForbidden) {
				a.refused[id] = true
			}
		} else {
			delete(a.lastErr, id)
			delete(a.refused, id)
		}
		a.mu.Unlock()
		if err != nil && a.deps.ctx.Err() == nil {
			a.log.Warn("operation failed", "replica", id, "op", what, "err", err)
		}
		a.deps.kick()
	}()
}

// refreshInfo records what the node says about itself (capacity for the
// scheduler, versions for operators) each time it comes up, and says
// whether it did. Bounded by timeout: the lease waits behind it.
func (a *agent) refreshInfo(ctx context.Context, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := a.api.Info(ctx)
	if err != nil {
		a.log.Warn("node info", "err", err)
		return false
	}
	if err := a.deps.saveInfo(ctx, a.name, infoRow(info)); err != nil {
		a.log.Error("save node info", "err", err)
		return false
	}
	// Disk use changes after every pull; a pass is owed only when what
	// the scheduler weighs changed.
	if a.infoAt.IsZero() || placementChanged(a.info, info) {
		a.deps.kick()
	}
	a.infoAt, a.info = time.Now(), info
	a.edgeNode.Store(info.Edge)
	return true
}

// imagesChanged has the node describe itself again soon (its disk use in
// moat node ls), through the renewal loop's session.
func (a *agent) imagesChanged() {
	select {
	case a.infoWake <- struct{}{}:
	default:
	}
}
