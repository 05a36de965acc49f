package master

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// The edges' shared certificate cache (internal/edge, replica_cache.go):
// each edge agent pulls its edge's changes (a long poll) and the master
// keeps them (store.EdgeCacheEntry) and installs them in every other edge
// whose cache key has the same ID, then acknowledges them on its next
// pull, which releases an edge waiting for a challenge to be everywhere.
// An edge coming up gets every entry of its key ID first. The entries are
// sealed with the operator's key, bound to their name's hash: the master
// carries what it can neither read nor forge.

// edgePollWait is how long one pull waits for a change.
const edgePollWait = 20 * time.Second

// edgeInstallTimeout bounds one install on another edge: a challenge's
// Put waits for all of them (at most edge.ChallengeWait).
const edgeInstallTimeout = 10 * time.Second

// edgeBatchBytes keeps an install's body under the node's request limit.
const edgeBatchBytes = nodeapi.MaxRequestBytes / 2

// edgeCaches is what the agents share to carry entries between edges.
type edgeCaches struct {
	db  *store.DB
	log *slog.Logger

	// carry serialises carrying and a joining edge's catch-up, so every
	// edge sees one entry's changes in the order they were stored.
	carry sync.Mutex

	mu    sync.Mutex
	peers map[string]*edgePeer // by node, while its pull runs

	// claims are the first fresh claim of each name to order its
	// certificate (internal/edge, claim.go), by key ID and hash; under
	// carry. In memory: a master starting again forgets them, and at
	// worst two edges order one name.
	claims map[string]edgeClaim
}

type edgeClaim struct {
	node string
	data []byte
	at   time.Time
}

// edgeClaimFresh is how long a claim holds others back: longer than an
// edge waits for the claimed certificate (edge.ClaimWait).
const edgeClaimFresh = 2 * time.Minute

type edgePeer struct {
	api   *nodeapi.Client
	keyID string
	// missed: an install to it failed (timed out, say, with its session
	// still up): it catches up on its next pull.
	missed atomic.Bool
}

func newEdgeCaches(db *store.DB, log *slog.Logger) *edgeCaches {
	return &edgeCaches{db: db, log: log.With("part", "edge cache"), peers: map[string]*edgePeer{}, claims: map[string]edgeClaim{}}
}

// edgeCache carries this node's cache changes to the other edges for as
// long as the session lasts, if the node is an edge (its info says so). An
// edge that does not know the route (a daemon from before it) is asked
// again a minute later.
func (a *agent) edgeCache(ctx context.Context) {
	ec := a.deps.edge
	defer ec.leave(a.name)
	var acked uint64
	keyID, epoch := "", ""
	wait := time.Duration(0) // the first pull answers at once: the edge joins now
	for ctx.Err() == nil {
		if !a.edgeNode.Load() {
			// Not an edge, as far as its info says (refreshed every
			// minute, and when the session starts): nothing to pull.
			ec.leave(a.name)
			keyID, epoch = "", ""
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, wait+edgeInstallTimeout)
		out, err := a.api.EdgeCacheOutbox(pctx, epoch, acked, wait)
		cancel()
		if err != nil {
			// The next pull answers at once: the daemon may have started
			// again, with a new outbox, which then catches up at once.
			wait = 0
			pause := time.Second
			if errors.Is(err, errs.ErrNotFound) || errors.Is(err, errs.ErrInvalid) {
				// No longer an edge, or a daemon from before the route.
				pause = infoEvery
			} else if ctx.Err() == nil {
				a.log.Debug("edge cache pull", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
			continue
		}
		if out.KeyID != keyID || out.Epoch != epoch || ec.missed(a.name) {
			// New to this session, or the daemon started again (it may
			// have missed changes), or its key changed, or an install to
			// it failed: it catches up.
			keyID, epoch, acked = out.KeyID, out.Epoch, 0
			if err := ec.join(ctx, a.name, a.api, keyID); err != nil {
				a.log.Warn("edge cache catch-up", "err", err)
			}
		}
		if len(out.Entries) > 0 {
			ec.carryFrom(ctx, a.name, keyID, out.Entries)
			for _, e := range out.Entries {
				acked = max(acked, e.Seq)
			}
		}
		wait = edgePollWait
	}
}

// join sends a node every entry of its key ID, then counts it among the
// edges that get the others' changes.
func (ec *edgeCaches) join(ctx context.Context, node string, api *nodeapi.Client, keyID string) error {
	ec.carry.Lock()
	defer ec.carry.Unlock()
	stored, err := ec.db.EdgeCacheEntries(ctx, keyID)
	if err == nil && len(stored) > 0 {
		entries := make([]nodeapi.EdgeCacheEntry, len(stored))
		for i, s := range stored {
			entries[i] = nodeapi.EdgeCacheEntry{Hash: s.Hash, Data: s.Data}
		}
		err = ec.install(ctx, node, &edgePeer{api: api, keyID: keyID}, entries)
	}
	ec.mu.Lock()
	ec.peers[node] = &edgePeer{api: api, keyID: keyID}
	ec.mu.Unlock()
	ec.log.Info("edge joined", "node", node, "key", keyID, "entries", len(stored))
	return err
}

// missed says whether an install to node failed since it joined.
func (ec *edgeCaches) missed(node string) bool {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	p := ec.peers[node]
	return p != nil && p.missed.Load()
}

func (ec *edgeCaches) leave(node string) {
	ec.mu.Lock()
	delete(ec.peers, node)
	ec.mu.Unlock()
}

// carryFrom stores one edge's changes and installs them in every other
// edge of its key ID that is up, and returns when each has answered or
// timed out: the caller then acknowledges them. An edge that failed
// catches up when it joins again.
func (ec *edgeCaches) carryFrom(ctx context.Context, from, keyID string, entries []nodeapi.EdgeCacheEntry) {
	ec.carry.Lock()
	defer ec.carry.Unlock()
	t0 := time.Now()
	send := make([]nodeapi.EdgeCacheEntry, 0, len(entries))
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			// Kept, it would fail every install batch it is in, and every
			// catch-up of the other edges after it: they would get nothing.
			ec.log.Warn("an edge's cache change is malformed: not carried", "node", from, "err", err)
			continue
		}
		if e.Claim {
			if won := ec.arbitrate(ctx, from, keyID, e); !won {
				continue
			}
			send = append(send, nodeapi.EdgeCacheEntry{Hash: e.Hash, Data: e.Data, Claim: true})
			continue
		}
		if _, err := ec.db.PutEdgeCacheEntry(ctx, keyID, e.Hash, e.Data); err != nil {
			// Still carried: the edges up now get it; one joining later
			// does not.
			ec.log.Error("store an edge cache entry", "node", from, "err", err)
		}
		send = append(send, nodeapi.EdgeCacheEntry{Hash: e.Hash, Data: e.Data})
	}
	ec.mu.Lock()
	peers := map[string]*edgePeer{}
	for n, p := range ec.peers {
		if n != from && p.keyID == keyID {
			peers[n] = p
		}
	}
	ec.mu.Unlock()
	var wg sync.WaitGroup
	for n, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ec.install(ctx, n, p, send); err != nil {
				p.missed.Store(true)
				ec.log.Warn("edge cache install; it catches up on its next pull", "node", n, "err", err)
			}
		}()
	}
	wg.Wait()
	ec.log.Debug("edge cache entries carried", "from", from, "entries", len(entries), "edges", len(peers), "took", time.Since(t0).Round(time.Microsecond))
}

// arbitrate keeps the first fresh claim of a name, and says whether e
// is it. A later claim from another edge is not carried: the claiming
// edge gets the first instead, before the caller acknowledges its claim,
// and so waits for that edge's certificate. ec.carry held.
func (ec *edgeCaches) arbitrate(ctx context.Context, from, keyID string, e nodeapi.EdgeCacheEntry) bool {
	now := time.Now()
	for k, c := range ec.claims {
		if now.Sub(c.at) > edgeClaimFresh {
			delete(ec.claims, k)
		}
	}
	k := keyID + "/" + e.Hash
	first, held := ec.claims[k]
	if !held || first.node == from {
		ec.claims[k] = edgeClaim{node: from, data: e.Data, at: now}
		return true
	}
	ec.mu.Lock()
	p := ec.peers[from]
	ec.mu.Unlock()
	if p != nil {
		if err := ec.install(ctx, from, p, []nodeapi.EdgeCacheEntry{{Hash: e.Hash, Data: first.data, Claim: true}}); err != nil {
			ec.log.Warn("answer a claim to order", "node", from, "err", err)
		}
	}
	ec.log.Info("a claim to order a certificate lost to an earlier one", "node", from, "first", first.node)
	return false
}

// install hands entries to one edge, in batches under its request limit.
func (ec *edgeCaches) install(ctx context.Context, node string, p *edgePeer, entries []nodeapi.EdgeCacheEntry) error {
	for len(entries) > 0 {
		n, size := 0, 0
		for n < len(entries) && n < nodeapi.MaxEdgeCacheEntries && (n == 0 || size+len(entries[n].Data)*4/3+200 < edgeBatchBytes) {
			size += len(entries[n].Data)*4/3 + 200
			n++
		}
		ictx, cancel := context.WithTimeout(ctx, edgeInstallTimeout)
		res, err := p.api.InstallEdgeCache(ictx, nodeapi.EdgeCacheInstall{KeyID: p.keyID, Entries: entries[:n]})
		cancel()
		if err != nil {
			return err
		}
		if res.Refused > 0 {
			// The edge could not open them: another edge's key changed
			// under the same ID, or the database was tampered with.
			ec.log.Warn("an edge refused cache entries", "node", node, "refused", res.Refused)
		}
		entries = entries[n:]
	}
	return nil
}
