package master

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/metrics/prom"
	"github.com/moatcloud/moat/internal/wire"
)

// Prometheus serves the master's state in the Prometheus text format
// (package prom), read at each scrape: GET /v1/prometheus on the API, and
// /metrics on the listener of Config.PrometheusListen.
func (m *Master) Prometheus() http.Handler {
	return prom.Handler(m.promSnapshot, m.timings)
}

// promSnapshot is every tenant's nodes, apps, replicas and newest
// samples, and the master's own health, from one look at the state.
func (m *Master) promSnapshot(ctx context.Context) (prom.Snapshot, error) {
	ctx = allTenants(ctx)
	w, err := m.look(ctx)
	if err != nil {
		return prom.Snapshot{}, err
	}
	s := prom.Snapshot{Nodes: nodesIn(w), Apps: appsIn(ctx, w), Replicas: replicasIn(ctx, w, ""), Files: m.stateSizes()}
	s.Latest = m.latestSamples()
	for _, p := range m.PullStats() {
		s.Pulls = append(s.Pulls, prom.Pull{Node: p.Node, Behind: p.Behind, Lag: p.Lag, LastPull: p.LastPull, Bytes: p.Bytes, Records: p.Records,
			Undecodable: p.Undecodable, Refused: p.Refused, Gaps: p.Gaps, Errors: p.Errors, Lost: p.Lost})
	}
	if m.metrics != nil {
		st := m.metrics.Stats()
		s.Ingest = prom.Ingest{Taken: st.Samples, Dropped: st.Dropped, Refused: st.Refused, Ignored: st.Ignored, Archives: st.Archives}
	}
	for _, n := range s.Nodes {
		conn := prom.Conn{Node: n.Name, State: n.State, Since: n.Since}
		if c, ok := m.pool.Get(n.Name); ok {
			conn.Connects, conn.RoundTrip = c.Connects(), c.RoundTrip()
		}
		if n.State != "unwatched" {
			s.SSH = append(s.SSH, conn)
		}
	}
	return s, nil
}

// allTenants is ctx as root acting in every tenant.
func allTenants(ctx context.Context) context.Context {
	c := access.Root
	c.Tenant = AllTenants
	return access.WithCaller(ctx, c)
}

// latestSamples is the newest sample of every node, replica and route,
// the tenant found from each app's key.
func (m *Master) latestSamples() []prom.Sample {
	if m.metrics == nil {
		return nil
	}
	latest := m.metrics.Latest()
	out := make([]prom.Sample, len(latest))
	for i, l := range latest {
		out[i].Latest = l
		if l.App != "" {
			out[i].Tenant, out[i].App = store.SplitAppKey(l.App)
		}
	}
	return out
}

// stateSizes is the size of the database's files and of the metrics
// archives.
func (m *Master) stateSizes() map[string]int64 {
	out := map[string]int64{}
	for _, f := range []string{DBFile, DBFile + "-wal", DBFile + "-shm"} {
		if fi, err := os.Stat(filepath.Join(m.cfg.Dir, f)); err == nil {
			out[f] = fi.Size()
		}
	}
	var archives int64
	err := filepath.WalkDir(filepath.Join(m.cfg.Dir, MetricsDir), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				archives += fi.Size()
			}
		}
		return nil
	})
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		out[MetricsDir] = archives
	}
	return out
}

// promEndpoint is the listener of Config.PrometheusListen, serving only
// /metrics; ok false when none is configured.
func (m *Master) promEndpoint() (wire.Endpoint, bool, error) {
	if m.cfg.PrometheusListen == "" {
		return wire.Endpoint{}, false, nil
	}
	ln, err := prom.Listen(m.cfg.PrometheusListen)
	if err != nil {
		return wire.Endpoint{}, false, err
	}
	return wire.Endpoint{Socket: m.cfg.PrometheusListen, Listener: ln, Handler: prom.MetricsOnly(m.Prometheus())}, true, nil
}
