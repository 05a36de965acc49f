package master

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/alert"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/sshx"
)

// Alerts: every alertEvery the master takes a snapshot of what it already
// holds (the nodes' connections, the containers they report, the apps'
// revisions, the newest metric samples), has package alert judge it
// against the alerts before, and records what began firing or resolved.
// Each such change is one row of the alerts table and one notice queued
// for every webhook, in one transaction (store.FireAlert, ResolveAlert):
// a master restarted loads what fires and neither forgets it nor sends
// it again. Webhooks are served from their queues (webhooks.go).

// alertEvery is how often alerts are evaluated: a snapshot the reconciler
// takes every second anyway, so cheap.
const alertEvery = 2 * time.Second

// alerter is the alerts' state between evaluations (the evaluation
// goroutine's, but for what mu guards).
type alerter struct {
	mu    sync.Mutex
	last  []alert.Alert          // the last evaluation's alerts, pending and firing
	ids   map[string]int64       // a firing key's instance
	fired map[string]time.Time   // when it fired
	hooks map[string]*webhookRun // by name (webhooks.go)
	// restarts: each replica's restarts, as seen between evaluations.
	restarts map[string]alert.RestartHistory
	// certs: the route certificates' expiry per edge (alerts_certs.go).
	certs certsSeen
}

// alertRecord is an alert instance as the alerts table keeps it.
type alertRecord struct {
	alert.Alert
	ID       int64
	Fired    time.Time
	Resolved time.Time `json:",omitzero"`
}

// startAlerts loads the alerts firing and the webhooks, and starts
// evaluating and delivering.
func (m *Master) startAlerts(ctx context.Context) error {
	if err := m.loadAlerts(ctx); err != nil {
		return err
	}
	hooks, _, err := m.db.Webhooks(ctx)
	if err != nil {
		return fmt.Errorf("load webhooks: %w", err)
	}
	for _, h := range hooks {
		m.startWebhook(ctx, h)
	}
	go m.alertLoop(ctx)
	return nil
}

// loadAlerts loads the alerts firing, as the evaluation before the next.
func (m *Master) loadAlerts(ctx context.Context) error {
	a := &m.alerts
	a.ids, a.fired, a.hooks, a.restarts = map[string]int64{}, map[string]time.Time{}, map[string]*webhookRun{}, map[string]alert.RestartHistory{}
	rows, err := m.db.Alerts(ctx, time.Now())
	if err != nil {
		return fmt.Errorf("load alerts: %w", err)
	}
	for _, r := range rows {
		var rec alertRecord
		if !r.Resolved.IsZero() || json.Unmarshal(r.Data, &rec) != nil {
			continue
		}
		rec.Firing = true
		a.last = append(a.last, rec.Alert)
		a.ids[rec.Key], a.fired[rec.Key] = r.ID, r.Fired
	}
	return nil
}

// alertLoop evaluates alerts every alertEvery, the first time one period
// after the master starts: its agents have a view of their nodes then.
func (m *Master) alertLoop(ctx context.Context) {
	tick := time.NewTicker(alertEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := m.evaluateAlerts(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("evaluate alerts", "err", err)
		}
	}
}

// evaluateAlerts takes a snapshot and judges it.
func (m *Master) evaluateAlerts(ctx context.Context) error {
	w, err := m.look(ctx)
	if err != nil {
		return err
	}
	m.judgeAlerts(ctx, m.alertSnapshot(w, m.alertSamples()))
	return nil
}

// judgeAlerts runs the rules on a snapshot and records what changed.
func (m *Master) judgeAlerts(ctx context.Context, s alert.Snapshot) {
	a := &m.alerts
	next := alert.Evaluate(s, a.last)
	fired, resolved := alert.Changes(a.last, next)
	for _, x := range fired {
		if err := m.fireAlert(ctx, x, s.Now); err != nil {
			m.log.Error("alert not recorded: tried again next round", "key", x.Key, "err", err)
			i := slices.IndexFunc(next, func(y alert.Alert) bool { return y.Key == x.Key })
			next[i].Firing = false
		}
	}
	for _, x := range resolved {
		if err := m.resolveAlert(ctx, x, s.Now); err != nil {
			m.log.Error("alert resolution not recorded: tried again next round", "key", x.Key, "err", err)
			next = append(next, x)
		}
	}
	a.mu.Lock()
	a.last = next
	a.mu.Unlock()
	if len(fired)+len(resolved) > 0 {
		m.wakeWebhooks()
	}
}

// fireAlert records an alert that began firing and queues its notice.
func (m *Master) fireAlert(ctx context.Context, x alert.Alert, now time.Time) error {
	rec := alertRecord{Alert: x, Fired: now}
	id, err := m.db.FireAlert(ctx, x.Key, func(id int64) ([]byte, []byte) {
		rec.ID = id
		return alertNotice(rec, "firing")
	})
	if err != nil {
		return err
	}
	a := &m.alerts
	a.mu.Lock()
	a.ids[x.Key], a.fired[x.Key] = id, now
	a.mu.Unlock()
	m.log.Warn("alert firing", "alert", x.Key, "id", id, "summary", x.Summary, "after", now.Sub(x.Since).Round(time.Millisecond))
	m.RecordEvent(masterapi.Event{Kind: masterapi.EventAlert, Node: x.Node, App: x.App, Replica: x.Replica, Message: x.Summary})
	return nil
}

// resolveAlert records an alert that stopped firing and queues its notice.
func (m *Master) resolveAlert(ctx context.Context, x alert.Alert, now time.Time) error {
	a := &m.alerts
	a.mu.Lock()
	id, fired := a.ids[x.Key], a.fired[x.Key]
	a.mu.Unlock()
	rec := alertRecord{Alert: x, ID: id, Fired: fired, Resolved: now}
	data, notice := alertNotice(rec, "resolved")
	if err := m.db.ResolveAlert(ctx, id, data, notice); err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.ids, x.Key)
	delete(a.fired, x.Key)
	a.mu.Unlock()
	m.log.Info("alert resolved", "alert", x.Key, "id", id, "summary", x.Summary)
	m.RecordEvent(masterapi.Event{Kind: masterapi.EventAlertResolved, Node: x.Node, App: x.App, Replica: x.Replica, Message: "resolved: " + x.Summary})
	return nil
}

// alertNotice is an alert's record (the alerts table's data) and the
// notice webhooks receive of it.
func alertNotice(rec alertRecord, status string) (data, notice []byte) {
	data, _ = json.Marshal(rec)
	notice, _ = json.Marshal(masterapi.AlertNotice{ID: fmt.Sprintf("%d-%s", rec.ID, status), Status: status, Alert: apiAlert(rec),
		Time: time.Now().UTC()})
	return data, notice
}

func apiAlert(rec alertRecord) masterapi.Alert {
	out := masterapi.Alert{ID: rec.ID, Rule: rec.Rule, Key: rec.Key, Severity: string(rec.Severity), Summary: rec.Summary,
		Node: rec.Node, Replica: rec.Replica, Value: rec.Value, Since: rec.Since.UTC(), Fired: rec.Fired.UTC()}
	if !rec.Resolved.IsZero() {
		out.Resolved = rec.Resolved.UTC()
	}
	if rec.App != "" {
		out.App, out.Tenant = appName(rec.App), keyTenant(rec.App)
	}
	return out
}

// alertSnapshot is what the rules judge: the master's own look at the
// world, and the newest samples.
func (m *Master) alertSnapshot(w *world, samples []masterapi.Latest) alert.Snapshot {
	s := alert.Snapshot{Now: w.now}
	nodeSample, replicaSample := map[string]masterapi.Latest{}, map[string]masterapi.Latest{}
	for _, l := range samples {
		switch l.Kind {
		case masterapi.MetricsNode:
			nodeSample[l.Name] = l
		case masterapi.MetricsReplica:
			replicaSample[l.Name] = l
		}
	}
	for name := range w.nodes {
		v, ok := w.views[name]
		n := alert.Node{Name: name, State: string(v.state), Since: v.since}
		if !ok {
			n.State = "unwatched"
		}
		l := nodeSample[name]
		n.DiskUsed, n.DiskTotal, n.SampledAt = l.Value("disk_used"), l.Value("disk_total"), l.Time
		s.Nodes = append(s.Nodes, n)
	}
	a := &m.alerts
	var counts []alert.Replica
	for _, r := range w.replicas {
		if r.Desired != store.Run {
			continue
		}
		v, ok := w.views[r.Node]
		x := alert.Replica{ID: r.ID, App: r.App, Node: r.Node, Known: ok && v.state == sshx.Up && v.synced}
		if c, has := v.containers[r.ID]; x.Known && has {
			x.State, x.Restarts, x.Started, x.Finished, x.OOMKilled = c.State, c.Restarts, c.Started, c.Finished, c.OOMKilled
		}
		if !x.Known {
			x.Restarts = a.restarts[r.ID].Count // unchanged while unknown
		}
		l := replicaSample[r.ID]
		x.Mem, x.MemLimit, x.SampledAt = l.Value("mem"), l.Value("mem_limit"), l.Time
		counts = append(counts, x)
	}
	a.restarts = alert.TrackRestarts(a.restarts, counts, w.now)
	for _, x := range counts {
		x.RestartTimes = a.restarts[x.ID].Times
		s.Replicas = append(s.Replicas, x)
	}
	for _, app := range w.apps {
		x := alert.App{Name: app.Name, Thresholds: alert.Thresholds{MemoryPercent: app.spec.Alerts.Memory, Restarts: app.spec.Alerts.Restarts}}
		var from, to int
		switch {
		case app.rev.Status == store.StatusFailed:
			x.FailedRevision = app.Revision
		case strings.HasPrefix(app.rev.Cause, "automatic rollback"):
			if n, _ := fmt.Sscanf(app.rev.Cause, "automatic rollback from %d to %d", &from, &to); n == 2 {
				x.FailedRevision, x.RolledBackTo, x.FailedAt = from, to, app.rev.Created
			}
		}
		s.Apps = append(s.Apps, x)
	}
	// Certificates: the master holds those of ingress routes only
	// sealed; the edges report their expiry (alerts_certs.go).
	a.certs.noteRouteSamples(samples)
	apps := make(map[string]bool, len(w.apps))
	for _, app := range w.apps {
		apps[app.Name] = true
	}
	s.Certs = a.certs.certs(w.now, func(node string) bool { return w.nodes[node].Info.Edge }, func(app string) bool { return apps[app] })
	return s
}

// alertSamples is the newest sample of every node and replica, from the
// metrics archive (none while it is not open).
func (m *Master) alertSamples() []masterapi.Latest {
	if s := m.MetricsStore(); s != nil {
		return s.Latest()
	}
	return nil
}

// Alerts lists the alerts firing and those resolved in the last day that
// the caller sees: its tenant's apps', and the nodes' when nodes.
func (m *Master) Alerts(ctx context.Context, nodes bool) (masterapi.AlertList, error) {
	rows, err := m.db.Alerts(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		return masterapi.AlertList{}, err
	}
	out := masterapi.AlertList{Active: []masterapi.Alert{}, Resolved: []masterapi.Alert{}}
	for _, r := range rows {
		var rec alertRecord
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			continue
		}
		rec.ID, rec.Fired, rec.Resolved = r.ID, r.Fired, r.Resolved
		if rec.App == "" && !nodes || rec.App != "" && !seesTenant(ctx, keyTenant(rec.App)) {
			continue
		}
		if r.Resolved.IsZero() {
			out.Active = append(out.Active, apiAlert(rec))
		} else {
			out.Resolved = append(out.Resolved, apiAlert(rec))
		}
	}
	slices.Reverse(out.Resolved)
	return out, nil
}

// webhookName is what a webhook may be called.
var webhookName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
