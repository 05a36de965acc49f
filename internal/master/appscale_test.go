package master

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
)

// appScaleMaster is a master not running, with one node (an edge when
// edge) and app web deployed from yaml with replicas placed on the node.
func appScaleMaster(t *testing.T, yaml string, edge bool) (*Master, store.Revision) {
	t.Helper()
	ctx := context.Background()
	m := alertsMaster(t)
	if err := m.db.PutNode(ctx, store.Node{Name: "n1", Addr: "10.0.0.1:22", Info: store.NodeInfo{Edge: edge}}); err != nil {
		t.Fatal(err)
	}
	sp, err := spec.Parse([]byte(yaml), "app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rev, err := m.newRevision(ctx, "web", sp, "sha256:aa", "deploy", "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.db.SetStatus(ctx, "web", rev.Revision, store.StatusDeployed, ""); err != nil {
		t.Fatal(err)
	}
	var reps []store.Replica
	for i := range sp.Replicas {
		reps = append(reps, store.Replica{ID: "web-" + string(rune('a'+i)) + "00000", App: "web", Revision: rev.Revision, Template: rev.Template, Node: "n1", Desired: store.Run, Created: time.Now()})
	}
	if err := m.db.AddReplicas(ctx, reps); err != nil {
		t.Fatal(err)
	}
	return m, rev
}

// ingest feeds the puller's sink one record of n1: each replica's cpu
// (cores) and health, and route request rates.
func ingest(t *testing.T, m *Master, node string, at time.Time, cpu map[string]float64, routes map[string]float64) {
	t.Helper()
	rec := nodeapi.MetricsRecord{Time: at}
	for id, c := range cpu {
		v := make([]float64, len(nodeapi.ContainerFields))
		for i := range v {
			v[i] = math.NaN()
		}
		v[0], v[8] = c, 1
		rec.Groups = append(rec.Groups, nodeapi.MetricsGroup{Kind: nodeapi.GroupContainer, Name: id, Values: v})
	}
	for host, rps := range routes {
		v := make([]float64, len(nodeapi.RouteFields))
		for i := range v {
			v[i] = math.NaN()
		}
		v[0] = rps
		rec.Groups = append(rec.Groups, nodeapi.MetricsGroup{Kind: nodeapi.GroupRoute, Name: host, Values: v})
	}
	if err := m.metricsSink().Ingest(node, rec); err != nil {
		t.Fatalf("ingest: %v", err)
	}
}

func scaleEvents(m *Master) []string {
	m.events.mu.Lock()
	defer m.events.mu.Unlock()
	var out []string
	for _, e := range m.events.queue {
		if e.Kind == masterapi.EventScale {
			out = append(out, e.Message)
		}
	}
	return out
}

// TestAppScaleOnce: the loop's decision from the samples the puller
// ingested: busy replicas make a revision "scale to N (cpu …)" by the
// autoscaler with a scale event; moat scale is refused; a deploy keeps
// the count; the status says why.
func TestAppScaleOnce(t *testing.T) {
	ctx := context.Background()
	yaml := "name: web\nimage: probe:1\nresources: {cpu: 200m}\nautoscale: {min: 2, max: 10, cpu: 50%}\n"
	m, rev := appScaleMaster(t, yaml, false)
	now := time.Now()
	// Not busy enough: nothing changes, and the status says so.
	ingest(t, m, "n1", now, map[string]float64{"web-a00000": 0.105, "web-b00000": 0.105}, nil)
	if err := m.appScaleOnce(ctx, now, false); err != nil {
		t.Fatal(err)
	}
	st := m.AppScaleStatus()
	if len(st) != 1 || st[0].App != "web" || st[0].Desired != 2 || st[0].Changed || !strings.Contains(st[0].Reason, "cpu 52% of 50% over 2 replicas: within 10% of the target; keeping 2") {
		t.Fatalf("status %+v", st)
	}
	// 5× the load: 0.5 cores a replica, limited to 0.2: 100 %, so 4.
	now = now.Add(time.Second)
	ingest(t, m, "n1", now, map[string]float64{"web-a00000": 0.2, "web-b00000": 0.2}, nil)
	if err := m.appScaleOnce(ctx, now, false); err != nil {
		t.Fatal(err)
	}
	_, cur, sp, err := m.targetSpec(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if sp.Replicas != 4 || cur.Revision != rev.Revision+1 || cur.Cause != "scale to 4 (cpu 100% of 50%)" || cur.Template != rev.Template {
		t.Errorf("after the load: revision %d %q, %d replicas; want %d \"scale to 4 (cpu 100%% of 50%%)\", 4, same template", cur.Revision, cur.Cause, sp.Replicas, rev.Revision+1)
	}
	if ev := scaleEvents(m); len(ev) != 1 || ev[0] != "scale to 4 (cpu 100% of 50%) by autoscaler" {
		t.Errorf("scale events %q", ev)
	}
	if st := m.AppScaleStatus(); len(st) != 1 || !st[0].Changed || st[0].Desired != 4 || st[0].LastScale != now {
		t.Errorf("status after the scale %+v", st)
	}
	// moat scale is refused, naming why; a deploy keeps 4.
	if _, err := m.Scale(ctx, "web", 7, "root"); err == nil || !strings.Contains(err.Error(), "web is autoscaled (2 to 10 replicas)") {
		t.Errorf("moat scale of an autoscaled app: %v", err)
	}
	if err := m.db.SetStatus(ctx, "web", cur.Revision, store.StatusDeployed, ""); err != nil {
		t.Fatal(err)
	}
	if n, ok := m.autoscaledCount(ctx, "web"); !ok || n != 4 {
		t.Errorf("autoscaledCount %d %v, want 4", n, ok)
	}
	// A deploy in progress: no decision, said so.
	sp.Image = "probe:2"
	dep, err := m.newRevision(ctx, "web", sp, "sha256:bb", "deploy", "test")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if err := m.appScaleOnce(ctx, now, false); err != nil {
		t.Fatal(err)
	}
	if st := m.AppScaleStatus(); len(st) != 1 || !strings.Contains(st[0].Reason, "is rolling out: no decision") || st[0].LastScale.IsZero() {
		t.Errorf("status during a deploy %+v", st)
	}
	if _, cur, _, _ := m.targetSpec(ctx, "web"); cur.Revision != dep.Revision {
		t.Errorf("the autoscaler made revision %d during a deploy", cur.Revision)
	}
}

// TestAppScaleRPS: rps is the sum of the app's hosts over the edges with
// a fresh sample; a node that is not an edge, a stale sample, a host
// shared with another app count for nothing.
func TestAppScaleRPS(t *testing.T) {
	ctx := context.Background()
	yaml := "name: web\nimage: probe:1\nports: [{name: http, port: 8080}]\n" +
		"ingress: [{host: web.test, port: http}, {host: www.web.test, port: http}]\nautoscale: {min: 1, max: 20, rps: 10}\n"
	m, _ := appScaleMaster(t, yaml, true)
	if err := m.db.PutNode(ctx, store.Node{Name: "n2", Addr: "10.0.0.2:22", Info: store.NodeInfo{Edge: true}}); err != nil {
		t.Fatal(err)
	}
	if err := m.db.PutNode(ctx, store.Node{Name: "n3", Addr: "10.0.0.3:22"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ingest(t, m, "n1", now, nil, map[string]float64{"web.test": 20, "www.web.test": 5})
	ingest(t, m, "n2", now, nil, map[string]float64{"web.test": 15})
	ingest(t, m, "n3", now, nil, map[string]float64{"web.test": 1000})                     // not an edge
	ingest(t, m, "n2", now.Add(-time.Hour), nil, map[string]float64{"www.web.test": 1000}) // stale
	if err := m.appScaleOnce(ctx, now, false); err != nil {
		t.Fatal(err)
	}
	_, cur, sp, _ := m.targetSpec(ctx, "web")
	if sp.Replicas != 4 || cur.Cause != "scale to 4 (rps 40 for 10 per replica)" {
		t.Errorf("revision %q, %d replicas; want scale to 4 by rps 40", cur.Cause, sp.Replicas)
	}
	st := m.AppScaleStatus()
	if len(st) != 1 || len(st[0].Metrics) != 1 || st[0].Metrics[0].Value != 40 {
		t.Errorf("status %+v", st)
	}
	if r, ok := m.appScale.hostRate("web.test", now.Add(time.Hour), func(string) bool { return true }); ok || r != 0 {
		t.Errorf("an hour on, web.test's rate %g %v: want forgotten", r, ok)
	}
	m.appScale.noteRate("n1", "web.test", now, math.Inf(1))
	m.appScale.noteRate("n1", "web.test", now, -1)
	m.appScale.noteRate("n1", "web.test", now, 1e300)
	if _, ok := m.appScale.hostRate("web.test", now, func(string) bool { return true }); ok {
		t.Errorf("an infinite, negative or huge rate was noted")
	}
}

// TestAppScaleUpOnly: a pass kicked by fresh samples scales up at once
// but never down, and leaves the status to the period's passes; a sample
// kicks one only while some app is autoscaled.
func TestAppScaleUpOnly(t *testing.T) {
	ctx := context.Background()
	m, rev := appScaleMaster(t, "name: web\nimage: probe:1\nresources: {cpu: 200m}\nautoscale: {min: 1, max: 10, cpu: 50%}\nreplicas: 2\n", false)
	now := time.Now()
	ingest(t, m, "n1", now, map[string]float64{"web-a00000": 0.01, "web-b00000": 0.01}, nil)
	if err := m.appScaleOnce(ctx, now, true); err != nil {
		t.Fatal(err)
	}
	if _, cur, _, _ := m.targetSpec(ctx, "web"); cur.Revision != rev.Revision {
		t.Errorf("an up-only pass scaled down: %q", cur.Cause)
	}
	if st := m.AppScaleStatus(); len(st) != 0 {
		t.Errorf("an up-only pass without a change set the status: %+v", st)
	}
	select {
	case <-m.appScale.kicks():
		t.Errorf("a sample kicked a pass before any pass saw an autoscaled app")
	default:
	}
	if err := m.appScaleOnce(ctx, now, false); err != nil { // sees web: autoscaled
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	ingest(t, m, "n1", now, map[string]float64{"web-a00000": 0.2, "web-b00000": 0.2}, nil)
	select {
	case <-m.appScale.kicks():
	default:
		t.Errorf("a sample of an autoscaled app's replicas kicked no pass")
	}
	if err := m.appScaleOnce(ctx, now, true); err != nil {
		t.Fatal(err)
	}
	if _, cur, sp, _ := m.targetSpec(ctx, "web"); sp.Replicas != 4 || cur.Cause != "scale to 4 (cpu 100% of 50%)" {
		t.Errorf("up-only pass under load: %q, %d replicas", cur.Cause, sp.Replicas)
	}
}
