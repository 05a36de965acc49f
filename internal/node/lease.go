package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// The master's lease on this node. Fenced containers (singletons) run only
// while it holds: if the master cannot renew it — the node is cut off —
// the node stops them itself, before the master, which waits longer than
// the lease, starts a replacement elsewhere. The expiry is kept on disk as
// wall-clock time so that restarting the daemon never extends it.
type lease struct {
	mu      sync.Mutex
	path    string
	expires time.Time
}

func loadLease(path string) *lease {
	l := &lease{path: path}
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &l.expires)
	}
	return l
}

func (l *lease) valid(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Before(l.expires)
}

func (l *lease) renew(ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expires = time.Now().Add(ttl)
	b, _ := json.Marshal(l.expires)
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.path)
}

const maxLeaseTTL = 10 * time.Minute

func (d *Daemon) handleLease(w http.ResponseWriter, r *http.Request) error {
	var req nodeapi.Lease
	if err := nodeapi.Decode(r.Body, &req); err != nil {
		return err
	}
	ttl := time.Duration(req.TTL)
	if ttl <= 0 || ttl > maxLeaseTTL {
		return errs.Invalid("ttl", "%s: want more than 0 and at most %s", ttl, maxLeaseTTL)
	}
	if err := d.lease.renew(ttl); err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// fence stops fenced containers once the lease has lapsed, checking
// twice a second until ctx ends.
func (d *Daemon) fence(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if d.lease.valid(time.Now()) {
			continue
		}
		for _, c := range d.List() {
			if c.Spec.Fenced && (c.State == nodeapi.StateRunning || c.State == nodeapi.StateRestarting) {
				d.log.Warn("master lease lapsed: stopping fenced container", "container", c.ID)
				zero := time.Duration(0)
				if _, err := d.stop(ctx, c.ID, &zero, true); err != nil {
					d.log.Error("fence container", "container", c.ID, "err", err)
				}
			}
		}
	}
}
