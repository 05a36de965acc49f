package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
	"github.com/moatcloud/moat/internal/sshkey"
)

// linkKeys caches the links' keys (store.LinkKey) between passes.
type linkKeys struct {
	mu     sync.Mutex
	loaded bool
	keys   map[string]linkKey
}

// syncLinks keeps a key for every link the apps want (and none for links
// gone), decides every node's link table, and has each agent send its
// node's table when it changed. Called at the end of each reconcile pass:
// a replica that stops being ready leaves the tables the pass after the
// master hears of it.
func (m *Master) syncLinks(ctx context.Context, w *world) {
	keys, err := m.keepLinkKeys(ctx, linkIDs(wantedLinks(w)))
	if err != nil {
		m.log.Error("link keys", "err", err)
	}
	if keys == nil {
		return // none known yet: planning now would take every remote endpoint away
	}
	for node, t := range planLinks(w, keys, m.ingressCerts(ctx, w)) {
		if a := m.agent(node); a != nil {
			a.sendLinks(t)
		}
	}
}

// keepLinkKeys makes the keys of new links and deletes those of links gone.
// When the database fails it says so and returns the keys it holds (a key
// it could not delete is kept a pass longer, a link whose key it could not
// store has none yet: only those links wait), or nil if it never read
// them.
func (m *Master) keepLinkKeys(ctx context.Context, want map[string]bool) (map[string]linkKey, error) {
	lk := &m.linkKeys
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if !lk.loaded {
		stored, err := m.db.LinkKeys(ctx)
		if err != nil {
			return nil, err
		}
		lk.keys = map[string]linkKey{}
		for _, k := range stored {
			lk.keys[k.ID] = linkKey{Private: string(k.Private), Public: k.Public}
		}
		lk.loaded = true
	}
	var errs []error
	for id := range lk.keys {
		if !want[id] {
			if err := m.db.DeleteLinkKey(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("delete the key of %s: %w", id, err))
				continue
			}
			delete(lk.keys, id)
			m.log.Info("link key deleted", "link", id)
		}
	}
	for id := range want {
		if _, ok := lk.keys[id]; ok {
			continue
		}
		k, err := newLinkKey(id)
		if err == nil {
			err = m.db.PutLinkKey(ctx, store.LinkKey{ID: id, Private: []byte(k.Private), Public: k.Public})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("make a key for %s: %w", id, err))
			continue
		}
		lk.keys[id] = k
		m.log.Info("link key made", "link", id)
	}
	return maps.Clone(lk.keys), errors.Join(errs...)
}

// newLinkKey makes an ed25519 key pair for a link.
func newLinkKey(id string) (linkKey, error) {
	private, public, err := sshkey.NewKey(nodeapi.LinkComment(id))
	if err != nil {
		return linkKey{}, err
	}
	return linkKey{Private: string(private), Public: sshkey.AuthorizedKey(public)}, nil
}

// linkPush is an agent's sending of its node's link table: the last table
// the node took, and the latest wanted, sent by one goroutine at a time.
type linkPush struct {
	mu      sync.Mutex
	sent    string // JSON of the table the node took; "" after a failure or reconnection
	want    *nodeapi.LinkTable
	wantKey string
	busy    bool
}

// sendLinks has the node take t, unless it already has it. Never blocks:
// a table wanted while one is on its way goes next, replacing any older
// one still waiting.
func (a *agent) sendLinks(t nodeapi.LinkTable) {
	b, _ := json.Marshal(t)
	p := &a.links
	p.mu.Lock()
	defer p.mu.Unlock()
	if string(b) == p.sent && !p.busy || string(b) == p.wantKey && p.busy {
		return
	}
	p.want, p.wantKey = &t, string(b)
	if p.busy {
		return
	}
	p.busy = true
	go a.pushLinks()
}

func (a *agent) pushLinks() {
	p := &a.links
	for {
		p.mu.Lock()
		t, key := p.want, p.wantKey
		if t == nil || key == p.sent {
			p.want, p.busy = nil, false
			p.mu.Unlock()
			return
		}
		p.want = nil
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(a.deps.ctx, linkSendTimeout)
		err := a.api.SetLinks(ctx, *t)
		cancel()
		if err != nil && errors.Is(err, errs.ErrNotFound) && len(t.Links) == 0 && len(t.Grants) == 0 {
			err = nil // a node from before links has none to take down
		}
		p.mu.Lock()
		if err != nil {
			// The next pass (within a second) sends it again.
			p.sent, p.want, p.busy = "", nil, false
			p.mu.Unlock()
			a.log.Warn("send link table", "err", err)
			return
		}
		p.sent = key
		p.mu.Unlock()
		a.log.Debug("link table sent", "links", len(t.Links), "grants", len(t.Grants))
	}
}

// linkSendTimeout bounds one sending of a link table.
const linkSendTimeout = 10 * time.Second

// forgetLinksSent makes the next pass send the table again: the node may
// have lost it or restarted while the connection was down.
func (a *agent) forgetLinksSent() {
	a.links.mu.Lock()
	a.links.sent = ""
	a.links.mu.Unlock()
}

// checkLinks refuses a spec linking to an app the tenant does not have, or
// to a port that app does not declare for tcp. Changes nothing.
func (m *Master) checkLinks(ctx context.Context, key string, sp spec.App) error {
	tenant := keyTenant(key)
	for i, l := range sp.Links {
		target := store.AppKey(tenant, l.App)
		_, _, tsp, err := m.targetSpec(ctx, target)
		if err != nil {
			return errs.Invalid(fmt.Sprintf("links[%d].app", i), "no app %s to link to: deploy it first", l.App)
		}
		declared := false
		for _, p := range tsp.Ports {
			declared = declared || p.Port == l.Port && p.Protocol == spec.ProtoTCP
		}
		if !declared {
			return errs.Invalid(fmt.Sprintf("links[%d].port", i), "%s does not declare tcp port %d", l.App, l.Port)
		}
	}
	return nil
}

// checkIngress refuses routes another app already has (the same host and
// path), and hosts another tenant routes: a tenant cannot take over, or
// take a path of, a name someone else serves. Another tenant's app is not
// named. Changes nothing.
func (m *Master) checkIngress(ctx context.Context, key string, sp spec.App) error {
	if len(sp.Ingress) == 0 {
		return nil
	}
	apps, err := m.db.Apps(ctx)
	if err != nil {
		return err
	}
	tenant := keyTenant(key)
	for _, a := range apps {
		if a.Name == key {
			continue
		}
		_, _, other, err := m.targetSpec(ctx, a.Name)
		if err != nil {
			return err
		}
		for i, in := range sp.Ingress {
			for _, o := range other.Ingress {
				switch {
				case o.Host == in.Host && keyTenant(a.Name) != tenant:
					return errs.Invalid(fmt.Sprintf("ingress[%d].host", i), "%s is routed by another tenant", in.Host)
				case o.Host == in.Host && path.Clean(o.Path) == path.Clean(in.Path):
					return errs.Invalid(fmt.Sprintf("ingress[%d]", i), "%s%s is routed to app %s", in.Host, in.Path, appName(a.Name))
				case o.Host == in.Host && in.TLS != spec.TLSNone && o.TLS != spec.TLSNone && (in.TLS != o.TLS || in.TLS == spec.TLSFromSecret):
					// An edge serves a name with one certificate; another
					// app's secret is never the same one.
					return errs.Invalid(fmt.Sprintf("ingress[%d].tls", i), "%s gets its certificate from app %s: give tls: none here", in.Host, appName(a.Name))
				}
			}
		}
	}
	return nil
}
