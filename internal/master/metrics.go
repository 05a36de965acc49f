package master

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"time"

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
		err = m.metrics.RemoveApp(name)
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

func (x *metricsIndex) host(h string) (string, bool) {
	if app, ok := x.hosts[h]; ok {
		return app, true
	}
	if _, rest, ok := strings.Cut(h, "."); ok {
		app, ok := x.hosts["*."+rest]
		return app, ok
	}
	return "", false
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
	x.replicas = make(map[string]string, len(reps))
	for _, r := range reps {
		x.replicas[r.ID] = r.Node
	}
	apps, err := m.db.Apps(ctx)
	if err != nil {
		m.log.Warn("metrics index", "err", err)
		return
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
