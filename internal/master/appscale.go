package master

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatcloud/moat/internal/appscale"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
)

// The app autoscaler: every AppScaleInterval (default 15 s) it decides
// the replica count of each app whose spec has autoscale (package
// appscale, HPA's algorithm) from the newest samples the puller ingested:
// each replica's CPU (Latest, replica kind) and each route's request rate
// as every edge reported it (noted per edge as the puller ingests, like
// certificates' expiry, alerts_certs.go: Latest keeps one edge's). A
// change is made the way moat scale makes it, a revision with the same
// template (cause "scale to N (…)", actor autoscaler), so it shows in
// moat history and as a scale event. moat scale itself is refused for an
// autoscaled app, and a deploy keeps the count reached.
//
// Samples are untrusted: a replica's CPU counts only from the node the
// master placed it on (the archive checks that), a route's rate only from
// a node whose record says edge, under its own name, finite and bounded;
// a lying edge can still make an app it routes grow to its max, no more.

// sampleFresh is how old a sample may be and still count: three samples
// of a node at the default 10 s, with the pull's lag.
const sampleFresh = 45 * time.Second

// maxRouteRate bounds a route rate an edge reports (requests/s).
const maxRouteRate = 1e9

// appScaler is the autoscaler's state: per app, the recommendations of
// the window and the last status; per route host and edge, the newest
// request rate.
type appScaler struct {
	mu     sync.Mutex
	past   map[string][]appscale.Recommendation
	status map[string]appscale.Status
	rates  map[string]map[string]routeRate // host → edge → rate

	// any: some app is autoscaled (the last pass saw one), so samples
	// arriving kick a scale-up pass.
	any      atomic.Bool
	kickOnce sync.Once
	kick     chan struct{}
}

// sampleSettle is how long a pass kicked by a sample waits for the
// samples other nodes took at about the same time.
const sampleSettle = time.Second

func (s *appScaler) kicks() chan struct{} {
	s.kickOnce.Do(func() { s.kick = make(chan struct{}, 1) })
	return s.kick
}

// sampled is told of every record the puller ingests (certSink): a
// record with replicas or routes kicks a scale-up pass while some app is
// autoscaled.
func (s *appScaler) sampled(groups []nodeapi.MetricsGroup) {
	if !s.any.Load() {
		return
	}
	for _, g := range groups {
		if g.Kind == nodeapi.GroupContainer || g.Kind == nodeapi.GroupRoute {
			select {
			case s.kicks() <- struct{}{}:
			default:
			}
			return
		}
	}
}

type routeRate struct {
	rps float64
	at  time.Time
}

// noteRate notes a route sample's request rate from an edge (the
// puller's sink, alerts_certs.go certSink).
func (s *appScaler) noteRate(node, host string, at time.Time, rps float64) {
	if math.IsNaN(rps) || math.IsInf(rps, 0) || rps < 0 || rps > maxRouteRate {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rates == nil {
		s.rates = map[string]map[string]routeRate{}
	}
	byEdge := s.rates[host]
	if byEdge == nil {
		byEdge = map[string]routeRate{}
		s.rates[host] = byEdge
	}
	if old, ok := byEdge[node]; ok && old.at.After(at) {
		return
	}
	byEdge[node] = routeRate{rps: rps, at: at}
}

// hostRate is a host's requests/s summed over the edges with a fresh
// sample; ok false when none has one. Stale notes are forgotten.
func (s *appScaler) hostRate(host string, now time.Time, isEdge func(string) bool) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum float64
	ok := false
	for node, r := range s.rates[host] {
		switch {
		case now.Sub(r.at) > sampleFresh:
			delete(s.rates[host], node)
		case isEdge(node):
			sum += r.rps
			ok = true
		}
	}
	if len(s.rates[host]) == 0 {
		delete(s.rates, host)
	}
	return sum, ok
}

// AppScaleStatus is the last decision for every autoscaled app, sorted by
// app (for moat autoscaler status).
func (m *Master) AppScaleStatus() []appscale.Status {
	s := &m.appScale
	s.mu.Lock()
	out := make([]appscale.Status, 0, len(s.status))
	for _, st := range s.status {
		st.Metrics = slices.Clone(st.Metrics)
		out = append(out, st)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b appscale.Status) int { return strings.Compare(a.App, b.App) })
	return out
}

// appScaleLoop decides every period until ctx ends; and, unless
// AppScalePeriodOnly, a second after fresh samples arrive, for scale-ups
// only: a node samples every 10 s, so a load step is seen up to 20 s
// after it (the first whole interval after it), and waiting for the next
// period on top would make 35 s; decided as samples come, 21 s.
func (m *Master) appScaleLoop(ctx context.Context) {
	period := m.cfg.AppScaleInterval
	if period <= 0 {
		period = appscale.DefaultPeriod
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	pass := func(upOnly bool) {
		if err := m.appScaleOnce(ctx, time.Now(), upOnly); err != nil && ctx.Err() == nil {
			m.log.Warn("app autoscaler", "err", err)
		}
	}
	pass(false)
	var soon <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			pass(false)
		case <-m.appScale.kicks():
			if !m.cfg.AppScalePeriodOnly && soon == nil {
				soon = time.After(sampleSettle)
			}
		case <-soon:
			soon = nil
			pass(true)
		}
	}
}

// appScaleOnce makes one decision for every autoscaled app. upOnly (a
// pass kicked by fresh samples) applies only scale-ups and records
// nothing else: the period's passes are the decisions status shows.
func (m *Master) appScaleOnce(ctx context.Context, now time.Time, upOnly bool) error {
	apps, err := m.db.Apps(ctx)
	if err != nil {
		return err
	}
	reps, err := m.db.Replicas(ctx)
	if err != nil {
		return err
	}
	nodes, err := m.db.Nodes(ctx)
	if err != nil {
		return err
	}
	edges := map[string]bool{}
	for _, n := range nodes {
		edges[n.Name] = n.Info.Edge
	}
	samples := map[string]masterapi.Latest{} // replica ID → newest sample
	if st := m.MetricsStore(); st != nil {
		for _, l := range st.Latest() {
			if l.Kind == masterapi.MetricsReplica && now.Sub(l.Time) <= sampleFresh {
				samples[l.Name] = l
			}
		}
	}
	type target struct {
		rev store.Revision
		sp  spec.App
	}
	targets := map[string]target{}
	hostApps := map[string]int{} // how many apps name each host
	for _, a := range apps {
		rev, err := m.db.GetRevision(ctx, a.Name, a.Revision)
		if err != nil {
			continue
		}
		sp, err := m.specOf(rev)
		if err != nil {
			continue
		}
		targets[a.Name] = target{rev, sp}
		seen := map[string]bool{}
		for _, in := range sp.Ingress {
			if h := strings.ToLower(in.Host); !seen[h] {
				seen[h] = true
				hostApps[h]++
			}
		}
	}
	s := &m.appScale
	any := false
	for _, t := range targets {
		any = any || t.sp.Autoscale != nil
	}
	s.any.Store(any)
	s.mu.Lock()
	for key := range s.status {
		if t, ok := targets[key]; !ok || t.sp.Autoscale == nil {
			delete(s.status, key)
			delete(s.past, key)
		}
	}
	s.mu.Unlock()
	var errsOut []error
	for _, a := range apps {
		t, ok := targets[a.Name]
		if !ok || t.sp.Autoscale == nil {
			continue
		}
		as := t.sp.Autoscale
		st := appscale.Status{App: a.Name, Min: as.Min, Max: as.Max, Current: t.sp.Replicas, Desired: t.sp.Replicas, Decided: now}
		if inProgress(t.rev.Status) && !strings.HasPrefix(t.rev.Cause, "scale") {
			if upOnly {
				continue
			}
			st.Reason = fmt.Sprintf("revision %d (%s) is rolling out: no decision until it is done", t.rev.Revision, t.rev.Cause)
			m.setAppScaleStatus(st)
			continue
		}
		in := appscale.Input{Now: now, Current: t.sp.Replicas, RPS: math.NaN(), Window: m.cfg.AppScaleWindow}
		cores := float64(t.sp.Resources.MilliCPU) / 1000
		for _, r := range reps {
			if r.App != a.Name || r.Desired != store.Run || r.Template != t.rev.Template {
				continue
			}
			rep := appscale.Replica{ID: r.ID, Ready: true, CPU: math.NaN()}
			if l, ok := samples[r.ID]; ok {
				if h := l.Value("health"); !math.IsNaN(h) && h < 1 {
					rep.Ready = false // starting or unhealthy
				}
				if c := l.Value("cpu"); cores > 0 && !math.IsNaN(c) {
					rep.CPU = c / cores
				}
			}
			in.Replicas = append(in.Replicas, rep)
		}
		if as.RPS > 0 {
			var sum float64
			known := false
			for _, ing := range t.sp.Ingress {
				h := strings.ToLower(ing.Host)
				if hostApps[h] != 1 {
					continue // shared with another app: whose requests is unknown
				}
				if r, ok := s.hostRate(h, now, func(n string) bool { return edges[n] }); ok {
					sum, known = sum+r, true
				}
			}
			if known {
				in.RPS = sum
			}
		}
		tg := appscale.Target{Min: as.Min, Max: as.Max, CPU: float64(as.CPU) / 100, RPS: as.RPS}
		s.mu.Lock()
		past := s.past[a.Name]
		s.mu.Unlock()
		d := appscale.Decide(tg, in, past)
		if upOnly && d.Desired <= in.Current {
			continue
		}
		s.mu.Lock()
		if s.past == nil {
			s.past = map[string][]appscale.Recommendation{}
		}
		s.past[a.Name] = appscale.Keep(past, appscale.Recommendation{At: now, Replicas: d.Recommended}, in.Window)
		st.LastScale = s.status[a.Name].LastScale
		s.mu.Unlock()
		st.Desired, st.Metrics, st.Reason = d.Desired, d.Metrics, d.Reason
		if d.Changed(in.Current) {
			if err := m.autoScale(ctx, a.Name, t.rev.Revision, d.Desired, summary(d)); err != nil {
				st.Desired = in.Current
				st.Reason += "; not applied: " + err.Error()
				errsOut = append(errsOut, fmt.Errorf("app %s: scale to %d: %w", appName(a.Name), d.Desired, err))
			} else {
				st.Changed, st.LastScale = true, now
				m.log.Info("app autoscaled", "app", a.Name, "from", in.Current, "to", d.Desired, "reason", d.Reason)
			}
		}
		m.setAppScaleStatus(st)
	}
	return errors.Join(errsOut...)
}

func (m *Master) setAppScaleStatus(st appscale.Status) {
	s := &m.appScale
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == nil {
		s.status = map[string]appscale.Status{}
	}
	if old, ok := s.status[st.App]; ok && st.LastScale.IsZero() {
		st.LastScale = old.LastScale
	}
	s.status[st.App] = st
}

// summary is what a scale's cause says of why: each metric's figure
// against its target.
func summary(d appscale.Decision) string {
	var parts []string
	for _, o := range d.Metrics {
		switch {
		case o.Desired < 0:
		case o.Name == "cpu":
			parts = append(parts, fmt.Sprintf("cpu %.0f%% of %.0f%%", o.Value*100, o.Target*100))
		case o.Name == "rps":
			parts = append(parts, fmt.Sprintf("rps %.3g for %.3g per replica", o.Value, o.Target))
		}
	}
	if len(parts) == 0 {
		return "bounds"
	}
	return strings.Join(parts, ", ")
}

// autoScale applies a decision as moat scale does: a revision with the
// same template, unless the app changed since (another revision, no
// autoscale any more).
func (m *Master) autoScale(ctx context.Context, key string, decidedOn, replicas int, why string) error {
	m.deploys.Lock()
	defer m.deploys.Unlock()
	_, rev, sp, err := m.targetSpec(ctx, key)
	if err != nil {
		return err
	}
	if rev.Revision != decidedOn || sp.Autoscale == nil {
		return fmt.Errorf("revision %d came since the decision: %w", rev.Revision, errs.ErrConflict)
	}
	sp.Replicas = replicas
	if err := sp.Validate(); err != nil {
		return err
	}
	if err := m.checkQuota(ctx, key, sp, "this scale"); err != nil {
		return err
	}
	_, err = m.newRevision(ctx, key, sp, rev.Image, fmt.Sprintf("scale to %d (%s)", replicas, why), "autoscaler")
	return err
}

// autoscaledCount is the count an autoscaled app has now, for a deploy
// to keep; ok false when the app is new or not autoscaled.
func (m *Master) autoscaledCount(ctx context.Context, key string) (int, bool) {
	_, _, sp, err := m.targetSpec(ctx, key)
	if err != nil || sp.Autoscale == nil {
		return 0, false
	}
	return sp.Replicas, true
}

// refuseAutoscaled is moat scale's refusal for an autoscaled app.
func refuseAutoscaled(name string, as *spec.Autoscale) error {
	return fmt.Errorf("%s is autoscaled (%d to %d replicas): change autoscale's min and max in its spec and deploy, or deploy it without autoscale: %w",
		name, as.Min, as.Max, errs.ErrConflict)
}

// appAutoscale is the app autoscaler's part of moat autoscaler status:
// the last decision per autoscaled app the caller may see, by name.
func (m *Master) appAutoscale(ctx context.Context) []masterapi.AppAutoscale {
	var out []masterapi.AppAutoscale
	for _, st := range m.AppScaleStatus() {
		if !seesTenant(ctx, keyTenant(st.App)) {
			continue
		}
		a := masterapi.AppAutoscale{App: appName(st.App), Min: st.Min, Max: st.Max, Current: st.Current, Desired: st.Desired,
			Decided: st.Decided, Reason: st.Reason, Changed: st.Changed, LastScale: st.LastScale}
		for _, o := range st.Metrics {
			r := masterapi.AppScaleRow{Name: o.Name, Value: o.Value, Target: o.Target, Replicas: o.Desired}
			if o.Name == "cpu" {
				r.Value, r.Target = o.Value*100, o.Target*100
			}
			a.Metrics = append(a.Metrics, r)
		}
		out = append(out, a)
	}
	return out
}
