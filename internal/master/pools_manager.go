package master

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
)

// The pool manager makes each cloud pool's servers match its desired
// size (clamped to min..max): it creates the missing ones, brings each up
// (Running, sshd, host key rotated over a connection pinned to the
// one-time key its user data carried, registered as moat node add
// registers), retires the excess (cordon, drain, remove, destroy) and
// destroys what the provider lists under this cluster's label that moat
// does not know. Every server is recorded before its create call is made,
// and forgotten only once its provider says it is gone: a master killed at
// any point leaks nothing. The decisions are pure (decide_pools.go).

// PoolSettings time the pool manager; zero fields take the defaults.
type PoolSettings struct {
	Interval      time.Duration // a pass over every pool (and at once when kicked)
	BootDeadline  time.Duration // from the create call to a registered node that is up
	CreateTimeout time.Duration // one create call, the provider's retries included
	OrphanEvery   time.Duration // how often the provider's servers are listed
	OrphanGrace   time.Duration // how old an unknown server must be to be destroyed
	GoneTimeout   time.Duration // how long a destroyed server may take to be gone before the destroy is asked again
	// CreateBackoff is the wait before a pool's next creation after one
	// failed, doubling with each failure in a row (createBackoff).
	CreateBackoff time.Duration
}

// Pool manager defaults.
const (
	DefaultPoolInterval  = 5 * time.Second
	DefaultBootDeadline  = 10 * time.Minute
	DefaultCreateTimeout = 3 * time.Minute
	DefaultOrphanEvery   = 3 * time.Minute
	DefaultOrphanGrace   = 10 * time.Minute
	DefaultGoneTimeout   = 5 * time.Minute
	DefaultCreateBackoff = 10 * time.Second
)

func (s *PoolSettings) setDefaults() {
	for _, f := range []struct {
		v *time.Duration
		d time.Duration
	}{{&s.Interval, DefaultPoolInterval}, {&s.BootDeadline, DefaultBootDeadline}, {&s.CreateTimeout, DefaultCreateTimeout},
		{&s.OrphanEvery, DefaultOrphanEvery}, {&s.OrphanGrace, DefaultOrphanGrace}, {&s.GoneTimeout, DefaultGoneTimeout},
		{&s.CreateBackoff, DefaultCreateBackoff}} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
}

// poolManager is the master's pool manager (one, from Run on).
type poolManager struct {
	m    *Master
	set  PoolSettings
	kick chan struct{}
	// open opens a pool's provider; bring brings a created server up to a
	// registered node (enrol). Tests replace them.
	open  func(ctx context.Context, p store.Pool) (provider.Provider, error)
	bring func(ctx context.Context, p store.Pool, s *store.PoolServer, prov provider.Provider) error

	// decide is held by a pass while it reads and decides, and by
	// growPool, retireNode and reuseNode while they change a pool's size
	// and a server's state together: a pass never sees one without the
	// other (a server retiring with the old size wanted would be replaced).
	decide sync.Mutex

	mu      sync.Mutex
	busy    map[string]bool         // servers a goroutine is working on
	creates map[string]*sync.Mutex  // per pool: breaker checks and intents one at a time
	notes   map[string]string       // per pool: why it is not at its size (the breaker, the last error)
	lastErr map[string]string       // per pool: the last create or destroy error
	backoff map[string]backoffState // per pool: failed creations in a row
	orphans time.Time               // last orphan pass
	wg      sync.WaitGroup
}

func newPoolManager(m *Master, set PoolSettings) *poolManager {
	set.setDefaults()
	pm := &poolManager{m: m, set: set, kick: make(chan struct{}, 1), busy: map[string]bool{}, creates: map[string]*sync.Mutex{},
		notes: map[string]string{}, lastErr: map[string]string{}, backoff: map[string]backoffState{}}
	pm.open = func(_ context.Context, p store.Pool) (provider.Provider, error) { return m.openPool(p) }
	pm.bring = pm.enrol
	return pm
}

// provider returns a pool's provider (opened once per account).
func (pm *poolManager) provider(ctx context.Context, p store.Pool) (provider.Provider, error) {
	return pm.open(ctx, p)
}

// kickPools asks for a pass soon.
func (pm *poolManager) kickPools() {
	select {
	case pm.kick <- struct{}{}:
	default:
	}
}

// run passes over the pools until ctx ends, then waits for the
// goroutines it started (they stop with ctx; what they leave half done
// is picked up from the database by the next master).
func (pm *poolManager) run(ctx context.Context) {
	t := time.NewTicker(pm.set.Interval)
	defer t.Stop()
	defer pm.wg.Wait()
	for {
		pm.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-pm.kick:
		}
	}
}

// pass is one look at every cloud pool.
func (pm *poolManager) pass(ctx context.Context) {
	pools := pm.decidePass(ctx)
	pm.mu.Lock()
	orphansDue := time.Since(pm.orphans) >= pm.set.OrphanEvery
	if orphansDue {
		pm.orphans = time.Now()
	}
	pm.mu.Unlock()
	if orphansDue && pools != nil {
		pm.orphanPass(ctx, pools)
	}
	pm.m.db.PrunePoolCreations(ctx, time.Now().Add(-store.CreationsKept))
}

// decidePass decides and starts what every pool needs, under decide.
func (pm *poolManager) decidePass(ctx context.Context) []store.Pool {
	pm.decide.Lock()
	defer pm.decide.Unlock()
	pools, err := pm.m.db.Pools(ctx)
	if err != nil {
		pm.m.log.Error("pool manager: read pools", "err", err)
		return nil
	}
	servers, err := pm.m.db.PoolServers(ctx, "")
	if err != nil {
		pm.m.log.Error("pool manager: read pool servers", "err", err)
		return nil
	}
	for _, p := range pools {
		if !p.Cloud() {
			continue
		}
		var mine []store.PoolServer
		for _, s := range servers {
			if s.Pool == p.Name {
				mine = append(mine, s)
			}
		}
		if err := pm.passPool(ctx, p, mine); err != nil {
			pm.m.log.Error("pool manager", "pool", p.Name, "err", err)
			pm.noteErr(p.Name, err)
		}
	}
	return pools
}

func (pm *poolManager) isBusy(name string) bool {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return pm.busy[name]
}

func (pm *poolManager) busyNames() map[string]bool {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return maps.Clone(pm.busy)
}

// start runs f on a server in a goroutine unless one already works on it.
func (pm *poolManager) start(ctx context.Context, name string, f func(context.Context)) {
	pm.mu.Lock()
	if pm.busy[name] {
		pm.mu.Unlock()
		return
	}
	pm.busy[name] = true
	pm.wg.Add(1)
	pm.mu.Unlock()
	go func() {
		defer pm.wg.Done()
		defer func() {
			pm.mu.Lock()
			delete(pm.busy, name)
			pm.mu.Unlock()
			pm.kickPools()
		}()
		f(ctx)
	}()
}

func (pm *poolManager) noteErr(pool string, err error) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if err == nil {
		delete(pm.lastErr, pool)
		return
	}
	pm.lastErr[pool] = err.Error()
}

// backoffState is a pool's run of failed creations.
type backoffState struct {
	fails int
	until time.Time // no creation before
}

// failed notes a failed creation: the next waits createBackoff.
func (pm *poolManager) failed(pool string) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	b := pm.backoff[pool]
	b.fails++
	b.until = time.Now().Add(createBackoff(pm.set.CreateBackoff, b.fails))
	pm.backoff[pool] = b
}

// succeeded ends a pool's run of failures.
func (pm *poolManager) succeeded(pool string) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	delete(pm.backoff, pool)
}

func (pm *poolManager) backingOff(pool string, now time.Time) bool {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return now.Before(pm.backoff[pool].until)
}

// passPool decides and starts what one pool needs.
func (pm *poolManager) passPool(ctx context.Context, p store.Pool, servers []store.PoolServer) error {
	now := time.Now()
	creations, err := pm.m.db.PoolCreations(ctx, p.Name, now.Add(-time.Hour))
	if err != nil {
		return err
	}
	replicas, err := pm.m.db.Replicas(ctx)
	if err != nil {
		return err
	}
	perNode := map[string]int{}
	for _, r := range replicas {
		perNode[r.Node]++
	}
	prov, err := pm.provider(ctx, p)
	if err != nil {
		return err
	}
	// Servers that a goroutine of this master does not work on: pick up
	// what an earlier master (or pass) left half done.
	for _, s := range servers {
		if pm.isBusy(s.Name) {
			continue
		}
		switch s.State {
		case store.ServerBooting, store.ServerEnrolling:
			if s.ProviderID != "" && now.Sub(s.Created) <= pm.set.BootDeadline {
				pm.start(ctx, s.Name, func(ctx context.Context) { pm.bringUp(ctx, p, s, prov) })
			}
		case store.ServerRetiring:
			pm.start(ctx, s.Name, func(ctx context.Context) { pm.retire(ctx, p, s, prov) })
		case store.ServerDestroying:
			pm.start(ctx, s.Name, func(ctx context.Context) { pm.destroy(ctx, p, s, prov, "") })
		case store.ServerReady:
			// A node removed by hand (moat node rm) is a server that
			// costs and serves nothing.
			if _, ok, err := pm.poolNode(ctx, p, s.Name); err == nil && !ok {
				pm.start(ctx, s.Name, func(ctx context.Context) {
					pm.destroy(ctx, p, s, prov, "its node was removed from the cluster")
				})
			}
		}
	}
	lo, hi, desired := p.Min, p.Max, p.Desired
	if p.Removing {
		lo, hi, desired = 0, 0, 0
		if len(servers) == 0 {
			return pm.removeEmpty(ctx, p.Name)
		}
	}
	var pinned map[string]bool
	if len(servers) > clampDesired(desired, lo, hi) { // some may be retired: which hold pinned apps
		if pinned, err = pm.pinnedNodes(ctx); err != nil {
			return err
		}
	}
	plan := planPool(poolInput{Min: lo, Max: hi, Desired: desired, PerHour: p.MaxCreatesPerHour, Servers: servers, Creations: creations,
		Replicas: perNode, Pinned: pinned, Busy: pm.busyNames(), BootDeadline: pm.set.BootDeadline, Now: now})
	pm.noteKept(p.Name, plan.Kept)
	for _, name := range plan.Destroy {
		s := serverNamed(servers, name)
		why := "not up within the boot deadline"
		if now.Sub(s.Created) <= pm.set.BootDeadline {
			why = "in excess of the pool's size"
		} else {
			pm.markTimeout(ctx, p, s)
		}
		pm.start(ctx, name, func(ctx context.Context) { pm.destroy(ctx, p, s, prov, why) })
	}
	for _, name := range plan.Retire {
		s := serverNamed(servers, name)
		if ok, err := pm.m.db.SwapPoolServerState(ctx, name, store.ServerReady, store.ServerRetiring); err != nil || !ok {
			return err
		}
		s.State = store.ServerRetiring
		pm.m.log.Info("pool server retiring", "pool", p.Name, "node", name, "why", "the pool is above its size")
		pm.start(ctx, name, func(ctx context.Context) { pm.retire(ctx, p, s, prov) })
	}
	note := ""
	if plan.Refused > 0 && plan.Breaker.Open {
		note = breakerNote(p.Name, plan.Breaker, p.MaxCreatesPerHour, plan.Refused)
	}
	pm.mu.Lock()
	old := pm.notes[p.Name]
	pm.notes[p.Name] = note
	pm.mu.Unlock()
	if note != "" && old == "" {
		pm.m.log.Warn("pool loop breaker open", "pool", p.Name, "calls", plan.Breaker.Calls, "cap", p.MaxCreatesPerHour, "refused", plan.Refused, "until", plan.Breaker.Until)
		pm.m.RecordEvent(masterapi.Event{Kind: "pool-breaker", Message: note})
	}
	if plan.Create > 0 && pm.backingOff(p.Name, now) {
		return nil // after a failure: the breaker's hour is not spent in a burst
	}
	for range plan.Create {
		if err := pm.create(ctx, p, prov); err != nil {
			return err
		}
	}
	return nil
}

// poolNode is the node of a pool's server: registered under its name and
// labelled with the pool (a node of the same name that is not the
// pool's — an operator's — is none of the pool's business: ok false).
func (pm *poolManager) poolNode(ctx context.Context, p store.Pool, name string) (store.Node, bool, error) {
	n, err := pm.m.db.GetNode(ctx, name)
	if errors.Is(err, errs.ErrNotFound) {
		return n, false, nil
	}
	if err != nil {
		return n, false, err
	}
	return n, store.NodePool(n.Labels) == p.Name, nil
}

// removeEmpty removes a pool being removed once it has no server, read
// again under its create lock: a creation between two places (no row
// for a moment) either recorded its next intent first, and the pool
// stays, or finds the pool gone and makes no call.
func (pm *poolManager) removeEmpty(ctx context.Context, pool string) error {
	mu := pm.poolLock(pool)
	mu.Lock()
	defer mu.Unlock()
	if rows, err := pm.m.db.PoolServers(ctx, pool); err != nil || len(rows) > 0 {
		return err
	}
	if err := pm.m.db.RemovePool(ctx, pool); err != nil {
		return fmt.Errorf("remove pool %s once its servers are gone: %w", pool, err)
	}
	pm.m.log.Info("pool removed: its servers are gone", "pool", pool)
	return nil
}

// pinnedNodes are the nodes apps are pinned to by their volumes: a drain
// cannot move their replicas, so the pool never retires them.
func (pm *poolManager) pinnedNodes(ctx context.Context) (map[string]bool, error) {
	apps, err := pm.m.db.Apps(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, a := range apps {
		rev, err := pm.m.db.GetRevision(ctx, a.Name, a.Revision)
		if err != nil {
			return nil, err
		}
		sp, err := pm.m.specOf(rev)
		if err != nil {
			return nil, err
		}
		if n := sp.PinnedNode(); n != "" {
			out[n] = true
		}
	}
	return out, nil
}

// noteKept says, when it changes, which nodes a pool keeps above its size
// because apps are pinned to them (moat pool ls shows it as the pool's
// last error until something else happens).
func (pm *poolManager) noteKept(pool string, kept []string) {
	note := ""
	if len(kept) > 0 {
		note = fmt.Sprintf("pool %s: node(s) %s kept above the pool's size: apps are pinned to them by their volumes (move or remove those apps)",
			pool, strings.Join(kept, ", "))
	}
	pm.mu.Lock()
	old := pm.notes[pool+"\x00kept"]
	pm.notes[pool+"\x00kept"] = note
	if note != "" {
		pm.lastErr[pool] = note
	}
	pm.mu.Unlock()
	if note != old && note != "" {
		pm.m.log.Warn("pool nodes kept: apps pinned to them", "pool", pool, "nodes", strings.Join(kept, ","))
	}
}

func serverNamed(servers []store.PoolServer, name string) store.PoolServer {
	for _, s := range servers {
		if s.Name == name {
			return s
		}
	}
	return store.PoolServer{Name: name}
}

// markTimeout notes that a server's place did not give a node in time,
// so the next creations try elsewhere first.
func (pm *poolManager) markTimeout(ctx context.Context, p store.Pool, s store.PoolServer) {
	cs, err := pm.m.db.PoolCreations(ctx, p.Name, s.Created)
	if err != nil {
		return
	}
	for _, c := range cs {
		// The call that made it: recorded at the same instant as its row.
		if c.At.Equal(s.Created) && c.Type == s.Type && c.Region == s.Region && c.Outcome == outcomeCreated {
			pm.m.db.SetCreationOutcome(ctx, c.ID, outcomeTimeout)
			return
		}
	}
}

// serverName is a new server's (and node's) name: the pool's and six
// random letters and digits.
func serverName(pool string) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return pool + "-" + string(b)
}

// create starts one server's creation: the intent is recorded and the
// goroutine it starts makes the create calls, each place in turn on a
// capacity error, then brings the server up. The breaker is asked again
// before every call (a server may take several).
func (pm *poolManager) create(ctx context.Context, p store.Pool, prov provider.Provider) error {
	name := serverName(p.Name)
	priv, pub, err := cloudinit.NewHostKey()
	if err != nil {
		return err
	}
	userData, err := cloudinit.Render(cloudinit.NodeData{
		Hostname: name, HostKeyPrivate: priv, HostKeyPublic: pub,
		AuthorizedKeys: []string{
			nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleMaster, sshkey.AuthorizedKey(pm.m.key.PublicKey())),
			nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RolePeer, sshkey.AuthorizedKey(pm.m.peer.PublicKey())),
		},
		PeerKey: pm.m.peerPEM,
	})
	if err != nil {
		return fmt.Errorf("user data for %s: %w", name, err)
	}
	pm.start(ctx, name, func(ctx context.Context) {
		s, ok := pm.createCalls(ctx, p, prov, name, pub, userData)
		if !ok {
			pm.failed(p.Name)
			return
		}
		pm.bringUp(ctx, p, s, prov)
	})
	return nil
}

// definite says whether a failed create call surely made no server.
func definite(err error) bool {
	var rl *provider.RateLimited
	switch {
	case errors.Is(err, provider.ErrCapacity), errors.Is(err, provider.ErrAuth):
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, provider.ErrTemporary), errors.As(err, &rl):
		return false
	}
	var ne net.Error
	return !errors.As(err, &ne)
}

// createCalls makes the create calls for one server, the pool's places in
// order, until one is accepted. Each call is preceded by its intent row.
func (pm *poolManager) createCalls(ctx context.Context, p store.Pool, prov provider.Provider, name, hostKey, userData string) (store.PoolServer, bool) {
	mu := pm.poolLock(p.Name)
	types, _ := pm.m.poolTypes(ctx, p)
	recent, _ := pm.m.db.PoolCreations(ctx, p.Name, time.Now().Add(-time.Hour))
	labels := map[string]string{provider.LabelCluster: pm.clusterID(ctx), provider.LabelPool: p.Name}
	if labels[provider.LabelCluster] == "" {
		return store.PoolServer{}, false
	}
	for _, pl := range placements(p.Types, p.Regions, types, recent, time.Now()) {
		now := time.Now()
		s := store.PoolServer{Name: name, Pool: p.Name, Type: pl.Type, Region: pl.Region, State: store.ServerCreating, HostKey: hostKey, Created: now}
		mu.Lock()
		// The pool may have gone since the pass that asked for this
		// server (removed while no row of it existed: between a capacity
		// answer and this intent), or be going: its server would be a
		// node nothing retires, in an account no orphan pass lists.
		if cur, err := pm.m.db.GetPool(ctx, p.Name); err != nil || cur.Removing {
			mu.Unlock()
			pm.m.log.Info("pool server not created: its pool is gone or being removed", "pool", p.Name, "server", name, "err", err)
			return s, false
		}
		cs, err := pm.m.db.PoolCreations(ctx, p.Name, now.Add(-time.Hour))
		if err != nil {
			mu.Unlock()
			pm.noteErr(p.Name, err)
			return s, false
		}
		if b := breaker(cs, p.MaxCreatesPerHour, now); b.Open {
			mu.Unlock()
			pm.m.log.Warn("pool loop breaker open: no more create calls", "pool", p.Name, "server", name, "calls", b.Calls, "cap", p.MaxCreatesPerHour, "until", b.Until)
			return s, false
		}
		id, err := pm.m.db.RecordCreateIntent(ctx, s, now)
		mu.Unlock()
		if err != nil {
			pm.noteErr(p.Name, err)
			return s, false
		}
		cctx, cancel := context.WithTimeout(ctx, pm.set.CreateTimeout)
		srv, err := prov.Create(cctx, provider.CreateRequest{Name: name, Type: pl.Type, Region: pl.Region, Image: p.Image, UserData: userData, Labels: labels})
		cancel()
		if err == nil {
			s.ProviderID, s.State, s.BilledSince = srv.ID, store.ServerBooting, time.Now()
			if err := pm.m.db.PutPoolServer(context.WithoutCancel(ctx), s); err != nil {
				// The row keeps the name: the orphan pass adopts it.
				pm.m.log.Error("pool server created but its id not recorded", "pool", p.Name, "server", name, "id", srv.ID, "err", err)
				return s, false
			}
			pm.m.db.SetCreationOutcome(context.WithoutCancel(ctx), id, outcomeCreated)
			pm.noteErr(p.Name, nil)
			pm.m.log.Info("pool server created", "pool", p.Name, "server", name, "id", srv.ID, "type", pl.Type, "region", pl.Region)
			pm.m.RecordEvent(masterapi.Event{Kind: "pool-server-created", Node: name, Message: fmt.Sprintf("pool %s: server %s (%s in %s) created", p.Name, srv.ID, pl.Type, orNone(pl.Region))})
			return s, true
		}
		ctx := context.WithoutCancel(ctx)
		if !definite(err) {
			// It may exist: the row stays (creating, no id) for the
			// orphan pass to adopt by name or forget after the grace.
			pm.m.db.SetCreationOutcome(ctx, id, outcomeFailed)
			s.LastError = err.Error()
			pm.m.db.PutPoolServer(ctx, s)
			pm.noteErr(p.Name, err)
			pm.m.log.Warn("pool server create call unanswered: left to find by name", "pool", p.Name, "server", name, "type", pl.Type, "region", pl.Region, "err", err)
			pm.soonOrphans()
			return s, false
		}
		pm.m.db.DeletePoolServer(ctx, name)
		if errors.Is(err, provider.ErrCapacity) {
			pm.m.db.SetCreationOutcome(ctx, id, outcomeCapacity)
			pm.m.log.Info("pool server type out of capacity: trying the next", "pool", p.Name, "type", pl.Type, "region", pl.Region)
			continue
		}
		pm.m.db.SetCreationOutcome(ctx, id, outcomeFailed)
		pm.noteErr(p.Name, err)
		pm.m.log.Error("pool server not created", "pool", p.Name, "server", name, "type", pl.Type, "region", pl.Region, "err", err)
		return s, false
	}
	err := fmt.Errorf("pool %s: no capacity for any of its server types (%s) in any of its regions (%s), or none sold there",
		p.Name, strings.Join(p.Types, ", "), strings.Join(p.Regions, ", "))
	pm.noteErr(p.Name, err)
	pm.m.log.Warn("pool server not created", "pool", p.Name, "server", name, "err", err)
	return store.PoolServer{}, false
}

func (pm *poolManager) poolLock(pool string) *sync.Mutex {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if pm.creates[pool] == nil {
		pm.creates[pool] = &sync.Mutex{}
	}
	return pm.creates[pool]
}

// soonOrphans makes the next pass list the provider's servers.
func (pm *poolManager) soonOrphans() {
	pm.mu.Lock()
	pm.orphans = time.Time{}
	pm.mu.Unlock()
}

func (pm *poolManager) clusterID(ctx context.Context) string {
	id, err := pm.m.db.ClusterID(ctx)
	if err != nil {
		pm.m.log.Error("pool manager: the cluster's id", "err", err)
		return ""
	}
	return id
}

// bringUp waits for a created server to run with an address and sshd,
// rotates its one-time host key over a connection pinned to it, and
// registers it as a node of the pool. Past the boot deadline (counted
// from the create call) the server is destroyed; the next pass creates
// another, elsewhere first.
func (pm *poolManager) bringUp(ctx context.Context, p store.Pool, s store.PoolServer, prov provider.Provider) {
	deadline := s.Created.Add(pm.set.BootDeadline)
	bctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := pm.bring(bctx, p, &s, prov)
	if err == nil {
		return
	}
	if ctx.Err() != nil {
		return // the master stops: the next one resumes from the row
	}
	pm.failed(p.Name)
	pm.m.log.Warn("pool server not brought up: destroying it", "pool", p.Name, "server", s.Name, "err", err)
	s.LastError = err.Error()
	pm.markTimeout(ctx, p, s)
	pm.destroy(ctx, p, s, prov, fmt.Sprintf("not up within the boot deadline (%s): %v", pm.set.BootDeadline, err))
}

func (pm *poolManager) enrol(ctx context.Context, p store.Pool, s *store.PoolServer, prov provider.Provider) error {
	// A node of that name already registered: the master died between
	// registering it and recording so — if it is this pool's. Another
	// (an operator's node of the same name) is not this server.
	if n, ok, err := pm.poolNode(ctx, p, s.Name); err != nil {
		return err
	} else if ok {
		s.State, s.HostKey = store.ServerReady, n.HostKey
		return pm.m.db.PutPoolServer(ctx, *s)
	} else if _, err := pm.m.db.GetNode(ctx, s.Name); err == nil {
		return fmt.Errorf("server %s: a node of that name is registered and is not pool %s's: %w", s.Name, p.Name, errs.ErrConflict)
	}
	srv, err := pm.waitRunning(ctx, prov, s.ProviderID, true)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(srv.IPv4, "22")
	if s.State != store.ServerEnrolling {
		s.State = store.ServerEnrolling
		if err := pm.m.db.PutPoolServer(ctx, *s); err != nil {
			return err
		}
	}
	onetime, err := sshkey.ParsePublicKey(s.HostKey)
	if err != nil {
		return fmt.Errorf("server %s: its one-time host key: %w", s.Name, err)
	}
	rotated, err := pm.rotateHostKey(ctx, s.Name, addr, onetime)
	if err != nil {
		return err
	}
	labels := maps.Clone(p.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[store.PoolLabel] = p.Name
	node := inventory.Node{Name: s.Name, Addr: addr, User: "root", HostKey: rotated, Labels: labels, Enrolled: time.Now().UTC(), Tenant: p.Tenant, Shared: p.Shared}
	if err := pm.m.RegisterNode(ctx, node, "pool "+p.Name); err != nil {
		return fmt.Errorf("register node %s: %w", s.Name, err)
	}
	s.State, s.HostKey, s.LastError = store.ServerReady, rotated, ""
	if err := pm.m.db.PutPoolServer(context.WithoutCancel(ctx), *s); err != nil {
		return err
	}
	pm.succeeded(p.Name)
	pm.m.log.Info("pool server enrolled", "pool", p.Name, "node", s.Name, "addr", addr, "took", time.Since(s.Created).Round(time.Millisecond))
	pm.m.RecordEvent(masterapi.Event{Kind: "pool-node-enrolled", Node: s.Name, Message: fmt.Sprintf("pool %s: node %s enrolled (host key rotated) %s after its create call", p.Name, s.Name, time.Since(s.Created).Round(time.Second))})
	return nil
}

// waitRunning polls the provider until the server runs with an address
// and (sshd) its sshd answers, backing off from 1 to 5 seconds between calls.
func (pm *poolManager) waitRunning(ctx context.Context, prov provider.Provider, id string, sshd bool) (provider.Server, error) {
	wait := time.Second
	var last error
	for {
		srv, err := prov.Get(ctx, id)
		switch {
		case errors.Is(err, provider.ErrNotFound):
			return srv, fmt.Errorf("server %s is gone at the provider", id)
		case err != nil:
			last = err
		case srv.Status == provider.Running && srv.IPv4 != "" && !sshd:
			return srv, nil
		case srv.Status == provider.Running && srv.IPv4 != "":
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(srv.IPv4, "22"))
			if err == nil {
				c.Close()
				return srv, nil
			}
			last = fmt.Errorf("sshd at %s: %w", srv.IPv4, err)
		default:
			last = fmt.Errorf("server %s is %s", id, srv.Status)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return srv, fmt.Errorf("waiting for server %s to run: %w (last: %v)", id, ctx.Err(), last)
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// rotateHostKey connects to the node's gate as the master with the
// one-time host key pinned and has the node replace it (POST
// /v1/hostkey): the node's answer, over that authenticated connection,
// is the key pinned from then on.
func (pm *poolManager) rotateHostKey(ctx context.Context, name, addr string, onetime ssh.PublicKey) (string, error) {
	pool := sshx.NewPool(sshx.Config{Signer: pm.m.key, Log: pm.m.log})
	defer pool.Close()
	conn := pool.Add(sshx.Target{Name: name, Addr: addr, User: "root", HostKey: onetime})
	if err := waitUp(ctx, conn); err != nil {
		return "", fmt.Errorf("connect to %s's gate at %s with its one-time host key: %w", name, addr, err)
	}
	rotated, err := conn.NodeAPI().RotateHostKey(ctx, ssh.FingerprintSHA256(onetime))
	if err != nil {
		return "", fmt.Errorf("rotate %s's one-time host key: %w", name, err)
	}
	key, err := sshkey.ParsePublicKey(rotated.New)
	if err != nil {
		return "", fmt.Errorf("the host key %s answered: %w", name, err)
	}
	// sshd re-executes to load the new key and refuses connections for a
	// moment: the node is registered once its sshd answers with the new
	// key, or the master's first dial would record a node-down for it.
	fresh := pool.Add(sshx.Target{Name: name + "/rotated", Addr: addr, User: "root", HostKey: key})
	if err := waitUp(ctx, fresh); err != nil {
		return "", fmt.Errorf("connect to %s's gate at %s with its new host key: %w", name, addr, err)
	}
	return rotated.New, nil
}

// waitUp waits until the connection is up, or the context ends.
func waitUp(ctx context.Context, conn *sshx.Conn) error {
	for {
		state, _, lastErr := conn.State()
		if state == sshx.Up {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), lastErr)
		case <-conn.Changed():
		case <-time.After(time.Second):
		}
	}
}

// retire drains a pool server's node and destroys the server: cordon and
// drain (each app's update rules and health gate the moves, as moat node
// drain), wait until no replica is left on it, remove the node, destroy.
func (pm *poolManager) retire(ctx context.Context, p store.Pool, s store.PoolServer, prov provider.Provider) {
	actor := "pool " + p.Name
	if _, ok, _ := pm.poolNode(ctx, p, s.Name); ok {
		if err := pm.m.Cordon(ctx, s.Name, "drain", actor); err != nil {
			pm.m.log.Error("pool server not drained", "node", s.Name, "err", err)
			return
		}
		for {
			// Taken back (reuseNode) while it drained: it stays.
			if row, err := pm.m.db.GetPoolServer(ctx, s.Name); err != nil || row.State != store.ServerRetiring {
				return
			}
			left, err := pm.replicasOn(ctx, s.Name)
			if err == nil && left == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		if ok, err := pm.m.db.SwapPoolServerState(ctx, s.Name, store.ServerRetiring, store.ServerDestroying); err != nil || !ok {
			return
		}
		s.State = store.ServerDestroying
		if err := pm.m.RemoveNode(ctx, s.Name, actor); err != nil && !errors.Is(err, errs.ErrNotFound) {
			pm.m.log.Error("pool node not removed", "node", s.Name, "err", err)
			return
		}
	}
	pm.destroy(ctx, p, s, prov, "retired")
}

func (pm *poolManager) replicasOn(ctx context.Context, node string) (int, error) {
	rs, err := pm.m.db.Replicas(ctx)
	if err != nil {
		return 0, err
	}
	up := pm.m.nodeUp(node)
	n := 0
	for _, r := range rs {
		// One being stopped on a node that is down stops with the node.
		if r.Node == node && (r.Desired != store.Stop || up) {
			n++
		}
	}
	return n, nil
}

// destroy destroys a server and forgets it once the provider says it is
// gone. Its node, if registered, is removed first.
func (pm *poolManager) destroy(ctx context.Context, p store.Pool, s store.PoolServer, prov provider.Provider, why string) {
	if _, ok, err := pm.poolNode(ctx, p, s.Name); err != nil {
		pm.m.log.Error("pool node not looked up", "node", s.Name, "err", err)
		return
	} else if ok {
		if err := pm.m.RemoveNode(ctx, s.Name, "pool "+p.Name); err != nil {
			pm.m.log.Error("pool node not removed", "node", s.Name, "err", err)
			return
		}
	}
	if s.State != store.ServerDestroying {
		s.State = store.ServerDestroying
		if err := pm.m.db.PutPoolServer(ctx, s); err != nil {
			pm.m.log.Error("pool server not marked destroying", "server", s.Name, "err", err)
			return
		}
	}
	if s.ProviderID == "" {
		// Never accepted: nothing to destroy (a late one is the
		// orphan pass's).
		pm.m.db.DeletePoolServer(ctx, s.Name)
		return
	}
	if why != "" {
		pm.m.log.Info("pool server destroying", "pool", p.Name, "server", s.Name, "id", s.ProviderID, "why", why)
	}
	if err := pm.destroyGone(ctx, prov, s.ProviderID); err != nil {
		if ctx.Err() == nil {
			pm.m.log.Error("pool server not destroyed (retried at the next pass)", "pool", p.Name, "server", s.Name, "id", s.ProviderID, "err", err)
			pm.noteErr(p.Name, err)
		}
		return
	}
	if err := pm.m.db.DeletePoolServer(context.WithoutCancel(ctx), s.Name); err != nil {
		pm.m.log.Error("pool server destroyed but not forgotten", "server", s.Name, "err", err)
		return
	}
	pm.m.log.Info("pool server destroyed", "pool", p.Name, "server", s.Name, "id", s.ProviderID)
	pm.m.RecordEvent(masterapi.Event{Kind: "pool-server-destroyed", Node: s.Name, Message: fmt.Sprintf("pool %s: server %s destroyed (%s)", p.Name, s.ProviderID, orNone(why))})
}

// destroyGone asks for the destroy and polls until the provider no
// longer has the server.
func (pm *poolManager) destroyGone(ctx context.Context, prov provider.Provider, id string) error {
	ctx, cancel := context.WithTimeout(ctx, pm.set.GoneTimeout)
	defer cancel()
	if err := prov.Destroy(ctx, id); err != nil && !errors.Is(err, provider.ErrNotFound) {
		return fmt.Errorf("destroy server %s: %w", id, err)
	}
	wait := 500 * time.Millisecond
	for {
		srv, err := prov.Get(ctx, id)
		if errors.Is(err, provider.ErrNotFound) {
			return nil
		}
		if err == nil && srv.Status != provider.Deleting && srv.Status != "" {
			// Still there and not going: ask again.
			if err := prov.Destroy(ctx, id); err != nil && !errors.Is(err, provider.ErrNotFound) {
				return fmt.Errorf("destroy server %s: %w", id, err)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("server %s not gone: %w", id, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// orphanPass lists each cloud pool's provider's servers carrying this
// cluster's label and destroys those moat does not know, past the grace;
// it adopts a server whose create answer was lost, by name, and forgets
// a create call that made nothing.
func (pm *poolManager) orphanPass(ctx context.Context, pools []store.Pool) {
	cluster := pm.clusterID(ctx)
	if cluster == "" {
		return
	}
	seen := map[provider.Provider]bool{}
	for _, p := range pools {
		if !p.Cloud() {
			continue
		}
		prov, err := pm.provider(ctx, p)
		if err != nil || seen[prov] {
			continue
		}
		seen[prov] = true
		listed, err := prov.List(ctx, map[string]string{provider.LabelCluster: cluster})
		if err != nil {
			pm.m.log.Error("orphan pass: list servers", "pool", p.Name, "err", err)
			continue
		}
		known, err := pm.m.db.PoolServers(ctx, "")
		if err != nil {
			return
		}
		plan := orphans(orphanInput{Cluster: cluster, Listed: listed, Known: known, Busy: pm.busyNames(), Grace: pm.set.OrphanGrace, Now: time.Now()})
		for name, srv := range plan.Adopt {
			s, err := pm.m.db.GetPoolServer(ctx, name)
			if err != nil || s.ProviderID != "" {
				continue
			}
			s.ProviderID, s.State, s.BilledSince = srv.ID, store.ServerBooting, srv.Created
			if err := pm.m.db.PutPoolServer(ctx, s); err == nil {
				pm.m.log.Info("pool server found by name after its create call's answer was lost", "pool", s.Pool, "server", name, "id", srv.ID)
			}
		}
		for _, name := range plan.Forget {
			pm.m.db.DeletePoolServer(ctx, name)
			pm.m.log.Info("pool server forgotten: its create call made none", "server", name)
		}
		for _, srv := range plan.Destroy {
			pm.m.log.Warn("orphan server destroyed: labelled with this cluster, unknown to moat", "pool", srv.Labels[provider.LabelPool], "server", srv.Name, "id", srv.ID, "created", srv.Created)
			if err := prov.Destroy(ctx, srv.ID); err != nil && !errors.Is(err, provider.ErrNotFound) {
				pm.m.log.Error("orphan server not destroyed", "server", srv.Name, "id", srv.ID, "err", err)
				continue
			}
			pm.m.RecordEvent(masterapi.Event{Kind: "pool-orphan-destroyed", Node: srv.Name, Message: fmt.Sprintf("server %s (%s) carried this cluster's label and was unknown for over %s: destroyed", srv.ID, srv.Name, pm.set.OrphanGrace)})
		}
	}
}

// PoolView is a cloud pool as the pool manager sees it, for the cluster
// autoscaler and moat pool ls.
type PoolView struct {
	Pool    store.Pool // its config; TokenSealed cleared
	Servers []store.PoolServer
	// Types are the pool's types as its provider sells them, in the
	// pool's order, each as sold in the first of its regions that has it
	// (poolOffer); nil until the provider listed them.
	Types           []provider.ServerType
	CreatesLastHour int
	BreakerOpen     bool
	BreakerReason   string
	BreakerUntil    time.Time
	LastError       string
}

// poolViews describes every cloud pool, by name.
func (m *Master) poolViews(ctx context.Context) ([]PoolView, error) {
	pools, err := m.db.Pools(ctx)
	if err != nil {
		return nil, err
	}
	servers, err := m.db.PoolServers(ctx, "")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []PoolView
	for _, p := range pools {
		if !p.Cloud() {
			continue
		}
		sealed := p
		p.TokenSealed = nil
		v := PoolView{Pool: p}
		for _, s := range servers {
			if s.Pool == p.Name {
				v.Servers = append(v.Servers, s)
			}
		}
		cs, err := m.db.PoolCreations(ctx, p.Name, now.Add(-time.Hour))
		if err != nil {
			return nil, err
		}
		b := breaker(cs, p.MaxCreatesPerHour, now)
		v.CreatesLastHour, v.BreakerOpen, v.BreakerUntil = b.Calls, b.Open, b.Until
		if b.Open {
			v.BreakerReason = fmt.Sprintf("%d create calls in the last hour (max-creates-per-hour %d); the next allowed at %s",
				b.Calls, p.MaxCreatesPerHour, b.Until.UTC().Format(time.RFC3339))
		}
		if pm := m.poolMgr; pm != nil {
			pm.mu.Lock()
			v.LastError = pm.lastErr[p.Name]
			pm.mu.Unlock()
		}
		if offered, err := m.poolOffered(ctx, sealed); err == nil {
			v.Types = offered
		}
		out = append(out, v)
	}
	return out, nil
}

// growPool asks a pool for n more servers than it wants now (clamped to
// its max) and starts a pass.
func (m *Master) growPool(ctx context.Context, pool string, n int, why string) error {
	m.poolMgr.decide.Lock()
	defer m.poolMgr.decide.Unlock()
	p, err := m.db.GetPool(ctx, pool)
	if err != nil {
		return err
	}
	if !p.Cloud() || p.Removing {
		return errs.Invalid("pool", "pool %s: moat does not create its servers (static, or being removed)", pool)
	}
	want := clampDesired(p.Desired+n, p.Min, p.Max)
	if want == p.Desired {
		return nil
	}
	if err := m.db.SetPoolDesired(ctx, map[string]int{pool: want}); err != nil {
		return err
	}
	m.log.Info("pool grown", "pool", pool, "from", p.Desired, "to", want, "why", why)
	m.poolMgr.kickPools()
	return nil
}

// retireNode retires one pool node: its server is marked retiring (so it
// no longer counts toward the pool's size), the pool's desired size drops
// by one (never below min), and a goroutine drains it, removes it and
// destroys its server. It returns once that is under way.
func (m *Master) retireNode(ctx context.Context, node, why string) error {
	m.poolMgr.decide.Lock()
	defer m.poolMgr.decide.Unlock()
	s, err := m.db.GetPoolServer(ctx, node)
	if err != nil {
		return fmt.Errorf("node %s is not a pool's server: %w", node, err)
	}
	if s.State == store.ServerRetiring || s.State == store.ServerDestroying {
		return nil
	}
	p, err := m.db.GetPool(ctx, s.Pool)
	if err != nil {
		return err
	}
	ok, err := m.db.SwapPoolServerState(ctx, node, store.ServerReady, store.ServerRetiring)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("node %s is %s, not ready: only a ready pool node is retired: %w", node, s.State, errs.ErrConflict)
	}
	if want := clampDesired(p.Desired-1, p.Min, p.Max); want != p.Desired && !p.Removing {
		if err := m.db.SetPoolDesired(ctx, map[string]int{p.Name: want}); err != nil {
			m.db.SwapPoolServerState(context.WithoutCancel(ctx), node, store.ServerRetiring, store.ServerReady)
			return err
		}
	}
	m.log.Info("pool node retiring", "pool", p.Name, "node", node, "why", why)
	m.RecordEvent(masterapi.Event{Kind: "pool-node-retiring", Node: node, Message: fmt.Sprintf("pool %s: node %s retiring: %s", p.Name, node, why)})
	m.poolMgr.kickPools()
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// reuseNode takes back a retiring node whose server is not being
// destroyed yet: it is ready again (uncordoned) and the pool's desired
// size grows by one (within max), so a scale-up uses it before buying a
// new server. Its drain's goroutine sees the state and stops.
func (m *Master) reuseNode(ctx context.Context, node, why string) error {
	m.poolMgr.decide.Lock()
	defer m.poolMgr.decide.Unlock()
	s, err := m.db.GetPoolServer(ctx, node)
	if err != nil {
		return fmt.Errorf("node %s is not a pool's server: %w", node, err)
	}
	ok, err := m.db.SwapPoolServerState(ctx, node, store.ServerRetiring, store.ServerReady)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("node %s is %s, not retiring: %w", node, s.State, errs.ErrConflict)
	}
	if err := m.Cordon(ctx, node, "uncordon", "pool "+s.Pool); err != nil {
		return err
	}
	if p, err := m.db.GetPool(ctx, s.Pool); err == nil && !p.Removing {
		if want := clampDesired(p.Desired+1, p.Min, p.Max); want != p.Desired {
			if err := m.db.SetPoolDesired(ctx, map[string]int{p.Name: want}); err != nil {
				return err
			}
		}
	}
	m.log.Info("pool node reused", "pool", s.Pool, "node", node, "why", why)
	m.RecordEvent(masterapi.Event{Kind: "pool-node-reused", Node: node, Message: fmt.Sprintf("pool %s: node %s taken back from its drain: %s", s.Pool, node, why)})
	m.poolMgr.kickPools()
	return nil
}
