package prom

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// emit sends every series of s.
func emit(s Snapshot, ch chan<- prometheus.Metric) {
	e := &emitter{ch: ch}
	e.nodes(s)
	e.apps(s.Apps)
	e.replicas(s)
	e.routes(s.Latest)
	e.master(s)
}

// emitter sends series, sharing one set of label pairs among the series
// of a thing with the same labels (a replica's dozen): client_golang's
// const metrics make their own each, most of a big scrape's garbage.
type emitter struct {
	ch     chan<- prometheus.Metric
	names  []string // of the last label pairs made
	values []string
	pairs  []*dto.LabelPair // nil: values not all UTF-8
}

func (e *emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.send(d, prometheus.GaugeValue, v, labels)
}

func (e *emitter) counter(d *prometheus.Desc, v float64, labels ...string) {
	e.send(d, prometheus.CounterValue, v, labels)
}

// send sends one series; one whose labels cannot be shown (a name from a
// node that is not UTF-8) is left out rather than failing the scrape.
func (e *emitter) send(d *prometheus.Desc, t prometheus.ValueType, v float64, values []string) {
	names := labelNames[d]
	if len(names) != len(values) {
		return // a programming error; the tests see the series missing
	}
	if !slices.Equal(names, e.names) || !slices.Equal(values, e.values) {
		// Pairs point into a copy: the caller may reuse values.
		e.names, e.values = names, slices.Clone(values)
		e.pairs = labelPairs(e.names, e.values)
	}
	if e.pairs == nil && len(names) > 0 {
		return
	}
	e.ch <- &series{desc: d, labels: e.pairs, counter: t == prometheus.CounterValue, value: v}
}

// labelPairs are the pairs of names and values sorted by name, as the
// exposition wants them; nil if a value is not UTF-8.
func labelPairs(names, values []string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, len(names))
	for i := range names {
		if !utf8.ValidString(values[i]) {
			return nil
		}
		out[i] = &dto.LabelPair{Name: &names[i], Value: &values[i]}
	}
	slices.SortFunc(out, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// series is one series: a const metric whose label pairs it shares.
type series struct {
	desc    *prometheus.Desc
	labels  []*dto.LabelPair // not to be changed
	counter bool
	value   float64
}

func (s *series) Desc() *prometheus.Desc { return s.desc }

func (s *series) Write(out *dto.Metric) error {
	out.Label = s.labels
	if s.counter {
		out.Counter = &dto.Counter{Value: &s.value}
	} else {
		out.Gauge = &dto.Gauge{Value: &s.value}
	}
	return nil
}

// set sends a state set: 1 for the state in, 0 for the others.
func (e *emitter) set(d *prometheus.Desc, states []string, in string, labels ...string) {
	l := append(labels, "")
	for _, s := range states {
		l[len(l)-1] = s
		e.gauge(d, b2f(s == in), l...)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fields sends a sample's values as its kind's field metrics; unknown
// (NaN) values are left out, and so are values a node could not have
// meant (infinities).
func (e *emitter) fields(kind byte, l masterapi.Latest, labels ...string) {
	for i, f := range fields[kind] {
		if f == nil || i >= len(l.Values) {
			continue
		}
		v := float64(l.Values[i])
		if math.IsNaN(v) || math.IsInf(v, 0) || f.skipZero && v == 0 {
			continue
		}
		if f.counter {
			e.counter(f.desc, v, labels...)
		} else {
			e.gauge(f.desc, v, labels...)
		}
	}
}

func (e *emitter) nodes(s Snapshot) {
	latest := map[string]masterapi.Latest{}
	for _, l := range s.Latest {
		if l.Kind == masterapi.MetricsNode && l.Name == l.Node {
			latest[l.Name] = l.Latest
		}
	}
	for _, n := range s.Nodes {
		id := []string{n.Name, n.Tenant}
		e.gauge(nodeUp, b2f(n.State == "up"), id...)
		e.set(nodeState, nodeStates, n.State, id...)
		if !n.Since.IsZero() {
			e.gauge(nodeStateSince, unix(n.Since), id...)
		}
		e.gauge(nodeCordoned, b2f(n.Cordoned), id...)
		e.gauge(nodeDraining, b2f(n.Draining), id...)
		e.gauge(nodeReplicas, float64(n.Replicas), id...)
		e.gauge(nodeCPUAlloc, float64(n.MilliCPU)/1000, id...)
		e.gauge(nodeMemAlloc, float64(n.Memory), id...)
		if n.Info.CPUs > 0 {
			e.gauge(nodeCPUCap, float64(n.Info.CPUs), id...)
		}
		if n.Info.MemoryBytes > 0 {
			e.gauge(nodeMemCap, float64(n.Info.MemoryBytes), id...)
		}
		if l, ok := latest[n.Name]; ok {
			e.gauge(nodeSampleTime, unix(l.Time), id...)
			e.fields(nodeapi.GroupNode, l, id...)
		}
	}
}

func (e *emitter) apps(apps []masterapi.App) {
	apps = slices.Clone(apps)
	slices.SortFunc(apps, func(a, b masterapi.App) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Tenant, b.Tenant))
	})
	for _, a := range apps {
		id := []string{a.Name, a.Tenant}
		e.gauge(appDesired, float64(a.Desired), id...)
		e.gauge(appReady, float64(a.Ready), id...)
		e.gauge(appRevision, float64(a.Revision), id...)
		e.gauge(appStable, float64(a.Stable), id...)
		e.set(appStatus, appStatuses, a.Status, id...)
	}
}

// health is a health check's result as a number (ok false: no check).
func health(h string) (float64, bool) {
	switch h {
	case "healthy":
		return 1, true
	case "starting":
		return 0.5, true
	case "unhealthy":
		return 0, true
	}
	return 0, false
}

func (e *emitter) replicas(s Snapshot) {
	latest := map[string]masterapi.Latest{}
	for _, l := range s.Latest {
		if l.Kind == masterapi.MetricsReplica {
			latest[l.Name] = l.Latest
		}
	}
	// In the order the exposition sorts series in (by label values, the
	// labels by name): its sort then finds them sorted.
	reps := slices.Clone(s.Replicas)
	slices.SortFunc(reps, func(a, b masterapi.Replica) int {
		return cmp.Or(strings.Compare(a.App, b.App), strings.Compare(a.Node, b.Node), strings.Compare(a.ID, b.ID), strings.Compare(a.Tenant, b.Tenant))
	})
	for _, r := range reps {
		id := []string{r.ID, r.App, r.Tenant, r.Node}
		// One series, of the state it is in: a full state set would be
		// most of a big cluster's series (six per replica).
		e.gauge(replicaState, 1, append(id, r.State)...)
		e.gauge(replicaRevision, float64(r.Revision), id...)
		e.counter(replicaRestarts, float64(r.Restarts), id...)
		if h, ok := health(r.Health); ok {
			e.gauge(replicaHealth, h, id...)
		}
		// The sample only of the node the master placed it on.
		if l, ok := latest[r.ID]; ok && l.Node == r.Node {
			e.gauge(replicaTime, unix(l.Time), id...)
			e.fields(nodeapi.GroupContainer, l, id...)
		}
	}
}

func (e *emitter) routes(latest []Sample) {
	seen := map[[2]string]bool{}
	for _, l := range latest {
		// One series per route and edge node, whatever the samples say.
		if l.Kind != masterapi.MetricsRoute || seen[[2]string{l.Name, l.Node}] {
			continue
		}
		seen[[2]string{l.Name, l.Node}] = true
		id := []string{l.Name, l.App, l.Tenant, l.Node}
		e.gauge(routeTime, unix(l.Time), id...)
		e.fields(nodeapi.GroupRoute, l.Latest, id...)
	}
}

func (e *emitter) master(s Snapshot) {
	states := map[string]int{"up": 0, "down": 0, "connecting": 0}
	for _, c := range s.SSH {
		states[c.State]++
		e.counter(sshConnects, float64(c.Connects), c.Node)
		if c.RoundTrip > 0 {
			e.gauge(sshRoundTrip, c.RoundTrip.Seconds(), c.Node)
		}
	}
	for _, st := range sortedKeys(states) {
		e.gauge(sshConnections, float64(states[st]), st)
	}
	for _, p := range s.Pulls {
		if p.Behind > 0 {
			e.gauge(pullLag, p.Behind.Seconds(), p.Node)
		}
		e.gauge(pullLagRecords, float64(p.Lag), p.Node)
		if !p.LastPull.IsZero() {
			e.gauge(pullLast, unix(p.LastPull), p.Node)
		}
		e.counter(pullBytes, float64(p.Bytes), p.Node)
		e.counter(pullRecords, float64(p.Records), p.Node, "ingested")
		e.counter(pullRecords, float64(p.Undecodable), p.Node, "undecodable")
		e.counter(pullRecords, float64(p.Refused), p.Node, "refused")
		e.counter(pullGaps, float64(p.Gaps), p.Node)
		e.counter(pullLost, float64(p.Lost), p.Node)
		e.counter(pullErrors, float64(p.Errors), p.Node)
	}
	in := s.Ingest
	for _, o := range []struct {
		name string
		n    uint64
	}{{"taken", in.Taken}, {"dropped", in.Dropped}, {"refused", in.Refused}, {"ignored", in.Ignored}} {
		e.counter(ingestGroups, float64(o.n), o.name)
	}
	e.gauge(archives, float64(in.Archives))
	for _, f := range sortedKeys(s.Files) {
		e.gauge(fileBytes, float64(s.Files[f]), f)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
