package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/edge"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/metrics/ring"
	"github.com/moatcloud/moat/internal/metrics/sample"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/runtime"
)

// Metrics: every MetricsInterval the node samples itself, its running
// containers and (on an edge) its routes, and appends the sample to a ring
// file under its state (metrics.ring) that the master pulls with GET
// /v1/metrics from its cursor. The ring's geometry does not depend on the
// interval, so changing the interval never remakes it: 2 × a day's
// samples at 10 s, of 4 KiB slots (67.5 MiB). A slot holds the node and
// about 70 containers (a container group is 39 bytes and its ID), so at
// 10 s the ring holds 48 h of a node with up to ~70 containers and 24 h up
// to ~150; at 1 s, 4.8 h (2.4 h past ~70 containers).

// Metrics defaults.
const (
	DefaultMetricsInterval = 10 * time.Second
	MinMetricsInterval     = time.Second
)

var metricsSlots = 2 * ring.Capacity(24*time.Hour, DefaultMetricsInterval)

// metrics is the node's ring and its sampler.
type metrics struct {
	ring     *ring.Ring // nil: the ring could not be opened (logged); sampling is off
	interval time.Duration
	sampler  *sample.Sampler

	mu      sync.Mutex
	appends chan struct{} // closed and replaced at each append

	// The edge's counters at the previous sample (metrics_edge.go).
	routePrev map[string]edge.RouteStats
	routeAt   time.Time
}

// openMetrics opens (or makes) the node's ring. A ring that cannot be
// opened as it is (another geometry, a damaged header) is made anew: the
// master sees a gap, and the node runs; a ring that cannot be made at all
// leaves metrics off, logged, and the node runs.
func (d *Daemon) openMetrics() *metrics {
	m := &metrics{interval: d.cfg.MetricsInterval, appends: make(chan struct{})}
	m.sampler = sample.New(sample.Options{V2: runtime.CgroupMode() == "v2", Disk: d.cfg.Root})
	slots := metricsSlots
	if d.cfg.metricsSlots > 0 {
		slots = d.cfg.metricsSlots
	}
	// Sync about once a minute: a power loss loses at most that much.
	opts := ring.Options{Slots: slots, SyncEvery: max(1, int(time.Minute/m.interval))}
	file := metricsRingFile(d.cfg.Root)
	r, err := ring.Open(file, opts)
	if err != nil {
		d.log.Warn("metrics ring unusable, making it anew", "file", file, "err", err)
		if rerr := os.Remove(file); rerr == nil || errors.Is(rerr, os.ErrNotExist) {
			r, err = ring.Open(file, opts)
		}
	}
	if err != nil {
		d.log.Error("metrics off: no ring", "file", file, "err", err)
		return m
	}
	m.ring = r
	return m
}

// metricsLoop samples every interval until ctx ends, then closes the ring.
func (d *Daemon) metricsLoop(ctx context.Context) {
	m := d.metrics
	if m.ring == nil {
		return
	}
	defer m.ring.Close()
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	d.sampleOnce(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			d.sampleOnce(now)
		}
	}
}

// sampleOnce takes one sample and appends it to the ring.
func (d *Daemon) sampleOnce(now time.Time) {
	groups := d.sampleGroups(now)
	recs, err := nodeapi.EncodeMetrics(now, groups, ring.MaxPayload(ring.DefaultSlotSize))
	if err != nil {
		d.log.Error("metrics sample not kept", "err", err)
		return
	}
	for _, rec := range recs {
		if _, err := d.metrics.ring.Append(now, rec); err != nil {
			d.log.Error("metrics sample not kept", "err", err)
			return
		}
	}
	d.metrics.mu.Lock()
	close(d.metrics.appends)
	d.metrics.appends = make(chan struct{})
	d.metrics.mu.Unlock()
}

// metricsTarget is what the sampler needs of one running container, and
// what the daemon's own record adds.
type metricsTarget struct {
	target   sample.Target
	restarts int
	health   string
}

// sampleGroups samples the node, its running containers (ordered by ID)
// and, on an edge, its routes.
func (d *Daemon) sampleGroups(now time.Time) []nodeapi.MetricsGroup {
	// The map's lock is let go before any container's is taken (as List
	// does): Remove takes the map's while holding its container's, so
	// waiting here for a container under the map's lock deadlocked the two.
	d.mu.Lock()
	all := make([]*container, 0, len(d.containers))
	for _, c := range d.containers {
		all = append(all, c)
	}
	d.mu.Unlock()
	var ts []metricsTarget
	for _, c := range all {
		c.mu.Lock()
		if c.rec.ID != "" && c.rec.State == nodeapi.StateRunning {
			ts = append(ts, metricsTarget{
				target:   sample.Target{ID: c.rec.ID, CgroupsPath: c.rec.Config.CgroupsPath, Pid: c.rec.InitPid, HostNetwork: c.rec.Config.HostNetwork},
				restarts: c.rec.Restarts, health: c.rec.Health,
			})
		}
		c.mu.Unlock()
	}
	slices.SortFunc(ts, func(a, b metricsTarget) int { return strings.Compare(a.target.ID, b.target.ID) })
	targets := make([]sample.Target, len(ts))
	for i, t := range ts {
		targets[i] = t.target
		if targets[i].CgroupsPath == "" {
			targets[i].CgroupsPath = path.Join("/", d.cfg.CgroupParent, t.target.ID)
		}
	}
	n := d.metrics.sampler.Node(now)
	cs := d.metrics.sampler.Containers(now, targets)
	groups := make([]nodeapi.MetricsGroup, 0, 1+len(cs))
	groups = append(groups, nodeapi.MetricsGroup{Kind: nodeapi.GroupNode, Name: "node", Values: nodeValues(n, len(cs))})
	for i, c := range cs {
		groups = append(groups, nodeapi.MetricsGroup{Kind: nodeapi.GroupContainer, Name: ts[i].target.ID, Values: containerValues(c, ts[i].restarts, ts[i].health)})
	}
	if d.edge != nil {
		groups = append(groups, d.metrics.sampleRoutes(now, d.edge.srv)...)
	}
	return groups
}

// nodeValues are a node's values in nodeapi.NodeFields order. Pure.
func nodeValues(n sample.Node, running int) []float64 {
	return []float64{n.CPU, n.Load1, n.MemUsed, n.MemTotal, n.DiskUsed, n.DiskTotal, n.DiskRead, n.DiskWrite, n.NetRx, n.NetTx, float64(running)}
}

// containerValues are a container's values in nodeapi.ContainerFields
// order. Pure.
func containerValues(c sample.Container, restarts int, health string) []float64 {
	return []float64{c.CPU, c.Mem, c.MemLimit, c.OOMKills, c.Pids, float64(restarts), c.NetRx, c.NetTx, healthValue(health)}
}

// healthValue: 1 healthy, 0 unhealthy, 0.5 starting, NaN without a check.
// Pure.
func healthValue(h string) float64 {
	switch h {
	case nodeapi.HealthHealthy:
		return 1
	case nodeapi.HealthUnhealthy:
		return 0
	case nodeapi.HealthStarting:
		return 0.5
	}
	return math.NaN()
}

// handleMetrics answers GET /v1/metrics?after=SEQ&max=N&wait=D: the ring's
// records after the cursor, waiting up to D (at most
// nodeapi.MaxMetricsWait) for the first when there is none yet.
func (d *Daemon) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	q, err := parseMetricsQuery(r.URL.Query().Get("after"), r.URL.Query().Get("max"), r.URL.Query().Get("wait"))
	if err != nil {
		return err
	}
	m := d.metrics
	if m == nil || m.ring == nil {
		return fmt.Errorf("metrics: no ring on this node (see its log): %w", errs.ErrUnavailable)
	}
	var stopping <-chan struct{} // the daemon's end (none before Serve)
	if d.ctx != nil {
		stopping = d.ctx.Done()
	}
	timer := time.NewTimer(q.wait)
	defer timer.Stop()
	for {
		m.mu.Lock()
		appended := m.appends
		m.mu.Unlock()
		recs, gap, err := m.ring.ReadFrom(q.after, q.max)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		if len(recs) > 0 || gap || q.wait == 0 {
			page := nodeapi.MetricsPage{Oldest: m.ring.Oldest(), Newest: m.ring.Newest(), Gap: gap, Interval: nodeapi.Duration(m.interval), Raw: make([]nodeapi.RawRecord, len(recs))}
			for i, rec := range recs {
				page.Raw[i] = nodeapi.RawRecord{Seq: rec.Seq, Data: rec.Data}
			}
			return writeJSON(w, http.StatusOK, page)
		}
		select {
		case <-appended:
		case <-timer.C:
			q.wait = 0
		case <-r.Context().Done():
			return nil
		case <-stopping:
			// The daemon stops: the poll is answered now, with nothing,
			// so the server's shutdown does not wait for it (and the
			// ring, which the sampling loop closes, is not read again).
			return writeJSON(w, http.StatusOK, nodeapi.MetricsPage{Oldest: m.ring.Oldest(), Newest: m.ring.Newest(), Interval: nodeapi.Duration(m.interval), Raw: []nodeapi.RawRecord{}})
		}
	}
}

type metricsQuery struct {
	after uint64
	max   int
	wait  time.Duration
}

// parseMetricsQuery reads GET /v1/metrics's parameters: max defaults to
// and is capped at nodeapi.MaxMetricsPage, wait at nodeapi.MaxMetricsWait.
// Pure.
func parseMetricsQuery(after, maxS, wait string) (metricsQuery, error) {
	q := metricsQuery{max: nodeapi.MaxMetricsPage}
	var err error
	if after != "" {
		if q.after, err = strconv.ParseUint(after, 10, 64); err != nil {
			return q, errs.Invalid("after", "%q is not a sequence number", after)
		}
	}
	if maxS != "" {
		n, err := strconv.Atoi(maxS)
		if err != nil || n < 1 {
			return q, errs.Invalid("max", "%q is not a positive number", maxS)
		}
		q.max = min(n, nodeapi.MaxMetricsPage)
	}
	if wait != "" {
		if q.wait, err = time.ParseDuration(wait); err != nil || q.wait < 0 {
			return q, errs.Invalid("wait", "%q is not a duration", wait)
		}
		q.wait = min(q.wait, nodeapi.MaxMetricsWait)
	}
	return q, nil
}

// metricsRingFile is where the ring lies under the node's state.
func metricsRingFile(root string) string { return filepath.Join(root, "metrics.ring") }
