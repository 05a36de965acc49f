package master

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/rollout"
	"github.com/moatcloud/moat/internal/sshx"
)

// Apps describes every app.
func (m *Master) Apps(ctx context.Context) ([]masterapi.App, error) {
	w, err := m.look(ctx)
	if err != nil {
		return nil, err
	}
	return appsIn(ctx, w), nil
}

// appsIn describes the apps of w the caller sees.
func appsIn(ctx context.Context, w *world) []masterapi.App {
	out := []masterapi.App{}
	for _, a := range w.apps {
		if !seesTenant(ctx, keyTenant(a.Name)) {
			continue
		}
		p := progress(w, a, a.rev)
		out = append(out, masterapi.App{
			Name: appName(a.Name), Tenant: keyTenant(a.Name), Revision: a.Revision, Stable: a.Stable, Image: a.spec.Image + " (" + short(a.rev.Image) + ")",
			Desired: a.spec.Replicas, Ready: p.Ready, Status: a.rev.Status, Message: a.rev.Message,
			Created: a.Created, Strategy: a.spec.Update.Strategy,
		})
	}
	return out
}

// Progress describes how a revision's rollout goes.
func (m *Master) Progress(ctx context.Context, name string, rev int) (masterapi.Progress, error) {
	p, image, err := m.rolloutProgress(ctx, appKey(ctx, name), rev)
	p.App = appName(p.App)
	return m.withTransfers(p, image), err
}

// rolloutProgress is a revision's progress but for its image's transfers,
// and its image ("" once its app is gone): a look at the whole state,
// which it counts.
func (m *Master) rolloutProgress(ctx context.Context, name string, rev int) (masterapi.Progress, string, error) {
	m.feeds.computed.Add(1)
	w, err := m.look(ctx)
	if err != nil {
		return masterapi.Progress{}, "", err
	}
	r, err := m.db.GetRevision(ctx, name, rev)
	if err != nil {
		return masterapi.Progress{}, "", err
	}
	for _, a := range w.apps {
		if a.Name == name {
			p := progress(w, a, r)
			if r.Status == store.StatusFailed && a.Revision != rev && strings.HasPrefix(a.rev.Cause, "automatic rollback") {
				p.RolledBackTo = a.Revision
			}
			return p, r.Image, nil
		}
	}
	return masterapi.Progress{App: name, Revision: rev, Status: r.Status, Message: r.Message}, "", nil
}

// withTransfers adds the deliveries under way of the revision's image.
func (m *Master) withTransfers(p masterapi.Progress, image string) masterapi.Progress {
	if image != "" {
		p.Transfers = m.delivery.Transfers(image)
	}
	return p
}

func progress(w *world, a appState, r store.Revision) masterapi.Progress {
	p := masterapi.Progress{App: a.Name, Revision: r.Revision, Status: r.Status, Message: r.Message, Desired: a.spec.Replicas}
	for _, x := range w.replicas {
		if x.App != a.Name || x.Desired != store.Run {
			continue
		}
		if x.Template != r.Template {
			p.Old++
			continue
		}
		p.Current++
		v, ok := w.views[x.Node]
		if s, _ := replicaState(x, v, ok); s == rollout.Ready {
			p.Ready++
		}
	}
	return p
}

// Revisions describes an app's history.
func (m *Master) Revisions(ctx context.Context, name string) ([]masterapi.Revision, error) {
	name = appKey(ctx, name)
	app, err := m.db.GetApp(ctx, name)
	if err != nil {
		return nil, err
	}
	revs, err := m.db.Revisions(ctx, name)
	if err != nil {
		return nil, err
	}
	out := []masterapi.Revision{}
	for _, r := range revs {
		var n struct{ Replicas int }
		jsonUnmarshal(r.Spec, &n)
		out = append(out, masterapi.Revision{Revision: r.Revision, Image: short(r.Image), Replicas: n.Replicas,
			Cause: r.Cause, Status: r.Status, Message: r.Message, Created: r.Created, Target: r.Revision == app.Revision})
	}
	return out, nil
}

// Replicas describes the replicas of one app, or of all ("") the
// caller's tenant sees.
func (m *Master) Replicas(ctx context.Context, app string) ([]masterapi.Replica, error) {
	w, err := m.look(ctx)
	if err != nil {
		return nil, err
	}
	if app != "" {
		app = appKey(ctx, app)
	}
	return replicasIn(ctx, w, app), nil
}

// replicasIn describes the replicas of w of one app (its key), or of all
// ("") the caller's tenant sees.
func replicasIn(ctx context.Context, w *world, app string) []masterapi.Replica {
	out := []masterapi.Replica{}
	for _, r := range w.replicas {
		if app != "" && r.App != app || app == "" && !seesTenant(ctx, keyTenant(r.App)) {
			continue
		}
		v, ok := w.views[r.Node]
		state, c := replicaState(r, v, ok)
		if r.Desired == store.Stop && c == nil {
			continue // gone, or about to be forgotten
		}
		rep := masterapi.Replica{ID: r.ID, App: appName(r.App), Tenant: keyTenant(r.App), Revision: r.Revision, Node: r.Node, Desired: r.Desired,
			State: string(state), Created: r.Created, Message: v.lastErr[r.ID]}
		if r.Desired == store.Stop {
			rep.State, rep.Message = "stopping", r.Note
		}
		if c != nil {
			rep.Health, rep.Restarts, rep.Started = c.Health, c.Restarts, c.Started
			if rep.Message == "" && c.Error != "" {
				rep.Message = c.Error
			}
			if rep.Message == "" && c.Health == "unhealthy" {
				rep.Message = c.HealthOutput
			}
		}
		if !ok || v.state != sshx.Up {
			rep.Message = "node " + r.Node + " is " + string(v.state)
		}
		out = append(out, rep)
	}
	return out
}

// Nodes describes every node.
func (m *Master) Nodes(ctx context.Context) ([]masterapi.Node, error) {
	w, err := m.look(ctx)
	if err != nil {
		return nil, err
	}
	return nodesIn(w), nil
}

// nodesIn describes every node of w.
func nodesIn(w *world) []masterapi.Node {
	byNode := map[string]*masterapi.Node{}
	out := []masterapi.Node{}
	for _, n := range w.nodes {
		v := w.views[n.Name]
		mn := masterapi.Node{Name: n.Name, Addr: n.Addr, State: string(v.state), Since: v.since, Cordoned: n.Cordoned,
			Draining: n.Draining, Labels: n.Labels, Info: nodeInfo(n.Info), Enrolled: n.Enrolled, HostKey: n.HostKey, User: n.User, Operator: masterapi.Access(n.Operator),
			Tenant: n.Tenant, Shared: n.Shared}
		if v.state == "" {
			mn.State = "unwatched"
		}
		if v.err != nil && v.state != sshx.Up {
			mn.Error = v.err.Error()
		}
		out = append(out, mn)
	}
	for i := range out {
		byNode[out[i].Name] = &out[i]
	}
	specs := map[string]appState{}
	for _, a := range w.apps {
		specs[a.Name] = a
	}
	for _, r := range w.replicas {
		n, ok := byNode[r.Node]
		if !ok || r.Desired != store.Run {
			continue
		}
		n.Replicas++
		if a, ok := specs[r.App]; ok {
			n.MilliCPU += a.spec.Resources.MilliCPU
			n.Memory += a.spec.Resources.MemoryBytes
		}
	}
	sortNodes(out)
	return out
}

func short(digest string) string {
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

func jsonUnmarshal(b []byte, v any) { json.Unmarshal(b, v) }

func sortNodes(ns []masterapi.Node) {
	sort.Slice(ns, func(i, j int) bool { return ns[i].Name < ns[j].Name })
}
