package node

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/moatcloud/moat/internal/edge"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// The edge's certificate cache is shared with the cluster's other edges
// through the master (internal/edge, replica_cache.go): the master pulls
// this edge's changes (GET /v1/edge/cache/outbox) and hands it the others'
// (PUT /v1/edge/cache). The node never calls the master. The cache key is
// the operator's (moat node add --edge installs the cluster's), so the
// master carries entries it can neither open nor forge; an edge with a
// key of its own (made on first start) has an ID no other edge has, and
// works alone.

// newEdgeCache opens a's cache and its outbox, and has a use it.
func newEdgeCache(a *edge.ACME, log *slog.Logger) (*edge.Cache, *edge.Outbox, error) {
	c, err := edge.NewCache(a.CacheDir, a.CacheKey, log)
	if err != nil {
		return nil, nil, fmt.Errorf("edge cache: %w", err)
	}
	a.Cache = c
	return c, edge.NewOutbox(c, log), nil
}

// edgeCacheWait is how long a pull waits for a change when the master
// names no wait.
const edgeCacheWait = 20 * time.Second

func (d *Daemon) handleEdgeCacheOutbox(w http.ResponseWriter, r *http.Request) error {
	if d.edge == nil {
		return fmt.Errorf("this node is not an edge: %w", errs.ErrNotFound)
	}
	var acked uint64
	if v := r.URL.Query().Get("acked"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return errs.Invalid("query acked", "%q: want a number", v)
		}
		acked = n
	}
	if r.URL.Query().Get("epoch") != d.edge.outbox.Epoch() {
		acked = 0 // pulled from the outbox of an earlier start
	}
	wait, err := queryDuration(r, "wait")
	if err != nil {
		return err
	}
	timeout := edgeCacheWait
	if wait != nil {
		timeout = min(*wait, nodeapi.MaxEdgeCacheWait)
	}
	out := nodeapi.EdgeCacheOutbox{KeyID: d.edge.cache.KeyID(), Epoch: d.edge.outbox.Epoch()}
	for _, e := range d.edge.outbox.Next(r.Context(), acked, timeout) {
		out.Entries = append(out.Entries, nodeapi.EdgeCacheEntry{Seq: e.Seq, Hash: e.Hash, Data: e.Data, Challenge: e.Challenge, Claim: e.Claim})
	}
	return writeJSON(w, http.StatusOK, out)
}

// handleInstallEdgeCache keeps entries other edges made. Each must open
// with this edge's key, bound to its hash (Cache.Install): one that does
// not was forged or moved to another name, and is refused; the rest of
// the batch is still taken. The refusals of a batch are logged once, with
// their count and the first reason: a master sending a thousand forged
// entries a request must not write a thousand lines each time.
func (d *Daemon) handleInstallEdgeCache(w http.ResponseWriter, r *http.Request) error {
	if d.edge == nil {
		return fmt.Errorf("this node is not an edge: %w", errs.ErrNotFound)
	}
	var in nodeapi.EdgeCacheInstall
	if err := nodeapi.Decode(r.Body, &in); err != nil {
		return err
	}
	if err := in.Validate(); err != nil {
		return err
	}
	if in.KeyID != d.edge.cache.KeyID() {
		return fmt.Errorf("entries for cache key %s, this edge's is %s: %w", in.KeyID, d.edge.cache.KeyID(), errs.ErrConflict)
	}
	var out nodeapi.EdgeCacheInstalled
	var refused error
	for _, e := range in.Entries {
		install := d.edge.cache.Install
		if e.Claim {
			install = d.edge.cache.InstallClaim
		}
		ok, err := install(e.Hash, e.Data)
		switch {
		case err != nil:
			out.Refused++
			if refused == nil {
				refused = err
			}
		case ok:
			out.Installed++
		default:
			out.Skipped++
		}
	}
	if refused != nil {
		d.edge.log.Warn("edge cache entries from the master refused", "refused", out.Refused, "of", len(in.Entries), "first", refused)
	}
	return writeJSON(w, http.StatusOK, out)
}
