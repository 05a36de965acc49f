package master

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	metricstore "github.com/moatcloud/moat/internal/metrics/archive"
)

// MetricsDir is where the master keeps its monitoring history, beside its
// state (package archive).
const MetricsDir = "metrics"

// metricsIndexAge bounds how often a sample the master cannot place (a
// replica just placed, a route just added) makes it read its records
// again.
const metricsIndexAge = time.Second

// openMetrics opens the history store; nodes' samples are checked against
// the master's records: a container must be a replica placed on the node
// that sent it, a route's host one an app serves.
func (m *Master) openMetrics() error {
	s, err := metricstore.Open(filepath.Join(m.cfg.Dir, MetricsDir), metricstore.Options{
		ReplicaOn: m.metricsIndex.replicaOn(m),
		RouteApp:  m.metricsIndex.routeApp(m),
		Log:       m.log,
	})
	m.metrics = s
	return err
}

// MetricsStore is the master's monitoring history: the puller ingests
// into it; the API, alerts and the Prometheus endpoint read it.
func (m *Master) MetricsStore() *metricstore.Store { return m.metrics }

// removeMetrics removes a node's or an app's archives with it; failing
// to is logged, not the removal's error (the collector, or the next
// removal, takes the files).
func (m *Master) removeMetrics(kind, name string) {
	var err error
	if kind == "node" {
		err = m.metrics.RemoveNode(name)
	} else {
		// Forgotten first: samples of its replicas still running (being
		// stopped) and of its routes are refused from now on, rather than
		// making its files again once removed (and the next app of that
		// name, or the next to serve a host, inheriting them).
		for _, host := range m.metricsIndex.forgetApp(name) {
			err = errors.Join(err, m.metrics.RemoveRoute(host))
		}
		err = errors.Join(err, m.metrics.RemoveApp(name))
	}
	if err != nil {
		m.log.Warn("metrics not removed", kind, name, "err", err)
	}
}

// metricsIndex is what the store checks samples against: which node each
// replica is placed on, which app serves each route host. Read from the
// database when a lookup misses and the last read is older than
// metricsIndexAge, so a replica placed a moment ago is found and a node
// cannot make the master read its database at will.
type metricsIndex struct {
	mu       sync.Mutex
	read     time.Time
	replicas map[string]string // replica ID → node
	hosts    map[string]string // route host (or *.suffix) → app key
}

func (x *metricsIndex) replicaOn(m *Master) func(node, id string) bool {
	return func(node, id string) bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		if n, ok := x.replicas[id]; ok && n == node {
			return true
		}
		x.refresh(m)
		return x.replicas[id] == node
	}
}

func (x *metricsIndex) routeApp(m *Master) func(host string) (string, bool) {
	return func(host string) (string, bool) {
		x.mu.Lock()
		defer x.mu.Unlock()
		if app, ok := x.host(host); ok {
			return app, true
		}
		x.refresh(m)
		return x.host(host)
	}
}

// host is the app of a route host exactly as a spec names it: an edge
// counts a wildcard route under its own name ("*.example.com"), so a
// name under a wildcard is no edge's report, and each would be an
// archive of its own, without bound.
func (x *metricsIndex) host(h string) (string, bool) {
	app, ok := x.hosts[h]
	return app, ok
}

// forgetApp forgets a removed app's replicas and route hosts, and
// returns the hosts.
func (x *metricsIndex) forgetApp(app string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id := range x.replicas {
		if metricstore.AppOf(id) == app {
			delete(x.replicas, id)
		}
	}
	var hosts []string
	for h, a := range x.hosts {
		if a == app {
			hosts = append(hosts, h)
			delete(x.hosts, h)
		}
	}
	return hosts
}

// refresh reads the records again unless it did a moment ago (x.mu held).
func (x *metricsIndex) refresh(m *Master) {
	if time.Since(x.read) < metricsIndexAge {
		return
	}
	x.read = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reps, err := m.db.Replicas(ctx)
	if err != nil {
		m.log.Warn("metrics index", "err", err)
		return
	}
	apps, err := m.db.Apps(ctx)
	if err != nil {
		m.log.Warn("metrics index", "err", err)
		return
	}
	// A removed app's replicas stay in the records, being stopped, for a
	// while: their samples would make its archives again.
	live := make(map[string]bool, len(apps))
	for _, a := range apps {
		live[a.Name] = true
	}
	x.replicas = make(map[string]string, len(reps))
	for _, r := range reps {
		if live[r.App] {
			x.replicas[r.ID] = r.Node
		}
	}
	x.hosts = map[string]string{}
	for _, a := range apps {
		rev, err := m.db.GetRevision(ctx, a.Name, a.Revision)
		if err != nil {
			continue
		}
		sp, err := m.specOf(rev)
		if err != nil {
			continue
		}
		for _, in := range sp.Ingress {
			x.hosts[strings.ToLower(in.Host)] = a.Name
		}
	}
}

// MetricsHistory reads one entity's history for the caller: an app's
// name is its name in the caller's tenant; a replica or route of an app
// the caller's tenant does not see is not found.
func (m *Master) MetricsHistory(ctx context.Context, q masterapi.MetricsQuery) (masterapi.Metrics, error) {
	asked := q.Name
	switch q.Kind {
	case masterapi.MetricsApp:
		q.Name = appKey(ctx, q.Name)
		if !seesTenant(ctx, keyTenant(q.Name)) {
			return masterapi.Metrics{}, fmt.Errorf("metrics of app %q: %w", asked, errs.ErrNotFound)
		}
	case masterapi.MetricsReplica:
		if !seesTenant(ctx, keyTenant(metricstore.AppOf(q.Name))) {
			return masterapi.Metrics{}, fmt.Errorf("metrics of replica %q: %w", q.Name, errs.ErrNotFound)
		}
	case masterapi.MetricsRoute:
		if app, ok := m.metricsIndex.routeApp(m)(q.Name); !ok || !seesTenant(ctx, keyTenant(app)) {
			return masterapi.Metrics{}, fmt.Errorf("metrics of route %q: %w", q.Name, errs.ErrNotFound)
		}
	}
	out, err := m.metrics.History(q)
	out.Name = asked
	return out, err
}

// MetricsLatest is the newest sample of every replica and route of the
// apps the caller's tenant sees (apps named as that tenant sees them),
// and of every node when nodes is set.
func (m *Master) MetricsLatest(ctx context.Context, nodes bool) ([]masterapi.Latest, error) {
	out := []masterapi.Latest{}
	for _, l := range m.metrics.Latest() {
		if l.Kind == masterapi.MetricsNode {
			if nodes {
				out = append(out, l)
			}
			continue
		}
		if !seesTenant(ctx, keyTenant(l.App)) {
			continue
		}
		l.App = appName(l.App)
		out = append(out, l)
	}
	return out, nil
}
