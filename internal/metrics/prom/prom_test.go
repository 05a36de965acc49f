package prom

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

var t0 = time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)

// values is a sample's values in its kind's field order, NaN where not
// given.
func values(kind byte, kv map[string]float64) []masterapi.Value {
	fs := nodeapi.FieldsOf(kind)
	out := make([]masterapi.Value, len(fs))
	for i, f := range fs {
		out[i] = masterapi.Value(math.NaN())
		if v, ok := kv[f.Name]; ok {
			out[i] = masterapi.Value(v)
		}
	}
	return out
}

func snapshot() Snapshot {
	return Snapshot{
		Nodes: []masterapi.Node{
			{Name: "n1", State: "up", Since: t0, Replicas: 1, MilliCPU: 500, Memory: 64 << 20, Info: nodeapi.NodeInfo{CPUs: 4, MemoryBytes: 8 << 30}},
			{Name: "n2", State: "down", Since: t0, Cordoned: true, Tenant: "shop"},
		},
		Apps: []masterapi.App{{Name: "web", Tenant: "default", Revision: 3, Stable: 2, Desired: 2, Ready: 1, Status: "progressing"}},
		Replicas: []masterapi.Replica{
			{ID: "web-aaaaaa", App: "web", Tenant: "default", Node: "n1", Revision: 3, State: "ready", Health: "healthy", Restarts: 2},
			{ID: "web-bbbbbb", App: "web", Tenant: "default", Node: "n2", Revision: 3, State: "unknown"},
		},
		Latest: []Sample{
			{Latest: masterapi.Latest{Kind: "node", Name: "n1", Node: "n1", Time: t0, Values: values(nodeapi.GroupNode, map[string]float64{"cpu": 1.5, "mem_used": 3 << 30, "load1": 0.7})}},
			{Latest: masterapi.Latest{Kind: "replica", Name: "web-aaaaaa", Node: "n1", App: "web", Time: t0, Values: values(nodeapi.GroupContainer, map[string]float64{"cpu": 0.25, "mem": 1 << 20, "mem_limit": 0, "oom_kills": 1})}, Tenant: "default"},
			// A sample claimed from another node than the replica's: not shown.
			{Latest: masterapi.Latest{Kind: "replica", Name: "web-bbbbbb", Node: "n1", App: "web", Time: t0, Values: values(nodeapi.GroupContainer, map[string]float64{"cpu": 9})}, Tenant: "default"},
			{Latest: masterapi.Latest{Kind: "route", Name: "shop.example", Node: "n1", App: "web", Time: t0, Values: values(nodeapi.GroupRoute, map[string]float64{"requests": 12, "latency_avg": math.Inf(1)})}, Tenant: "default"},
			{Latest: masterapi.Latest{Kind: "route", Name: "shop.example", Node: "n1", App: "web", Time: t0, Values: values(nodeapi.GroupRoute, map[string]float64{"requests": 99})}, Tenant: "default"},
		},
		SSH:   []Conn{{Node: "n1", State: "up", Since: t0, Connects: 2, RoundTrip: 3 * time.Millisecond}, {Node: "n2", State: "down", Connects: 1}},
		Pulls: []Pull{{Node: "n1", Behind: 2 * time.Second, Lag: 3, Bytes: 4096, Records: 10, Refused: 1}},
		Files: map[string]int64{"master.db": 1 << 20},
	}
}

// scrape serves s with Handler and parses what it wrote.
func scrape(t *testing.T, s Snapshot) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	h := Handler(func(context.Context) (Snapshot, error) { return s, nil }, NewTimings())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	text := rec.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return text, fams
}

// value is the value of the series of family name with exactly labels
// (ok false: none).
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		for _, l := range m.Label {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

func TestScrape(t *testing.T) {
	_, fams := scrape(t, snapshot())
	n1 := map[string]string{"node": "n1", "tenant": ""}
	n2 := map[string]string{"node": "n2", "tenant": "shop"}
	web := map[string]string{"app": "web", "tenant": "default"}
	ra := map[string]string{"replica": "web-aaaaaa", "app": "web", "tenant": "default", "node": "n1"}
	rb := map[string]string{"replica": "web-bbbbbb", "app": "web", "tenant": "default", "node": "n2"}
	route := map[string]string{"host": "shop.example", "app": "web", "tenant": "default", "node": "n1"}
	with := func(l map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range l {
			out[a] = b
		}
		return out
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64 // NaN: absent
	}{
		{"moat_node_up", n1, 1},
		{"moat_node_up", n2, 0},
		{"moat_node_state", with(n2, "state", "down"), 1},
		{"moat_node_state", with(n2, "state", "up"), 0},
		{"moat_node_cordoned", n2, 1},
		{"moat_node_cpu_allocated_cores", n1, 0.5},
		{"moat_node_cpu_capacity_cores", n1, 4},
		{"moat_node_memory_capacity_bytes", n1, 8 << 30},
		{"moat_node_cpu_capacity_cores", n2, math.NaN()}, // not known
		{"moat_node_cpu_usage_cores", n1, 1.5},
		{"moat_node_memory_used_bytes", n1, 3 << 30},
		{"moat_node_load1", n1, 0.7},
		{"moat_node_disk_used_bytes", n1, math.NaN()}, // NaN in the sample
		{"moat_node_sample_timestamp_seconds", n1, float64(t0.Unix())},
		{"moat_app_replicas_desired", web, 2},
		{"moat_app_replicas_ready", web, 1},
		{"moat_app_revision", web, 3},
		{"moat_app_stable_revision", web, 2},
		{"moat_app_status", with(web, "status", "progressing"), 1},
		{"moat_app_status", with(web, "status", "deployed"), 0},
		{"moat_replica_state", with(ra, "state", "ready"), 1},
		{"moat_replica_state", with(ra, "state", "failed"), math.NaN()},
		{"moat_replica_state", with(rb, "state", "unknown"), 1},
		{"moat_replica_restarts_total", ra, 2},
		{"moat_replica_health", ra, 1},
		{"moat_replica_health", rb, math.NaN()},
		{"moat_replica_cpu_usage_cores", ra, 0.25},
		{"moat_replica_memory_bytes", ra, 1 << 20},
		{"moat_replica_memory_limit_bytes", ra, math.NaN()}, // 0: none
		{"moat_replica_oom_kills_total", ra, 1},
		{"moat_replica_cpu_usage_cores", rb, math.NaN()}, // another node's word
		{"moat_route_requests_per_second", route, 12},    // the first of two
		{"moat_route_latency_average_seconds", route, math.NaN()},
		{"moat_ssh_connections", map[string]string{"state": "up"}, 1},
		{"moat_ssh_connections", map[string]string{"state": "down"}, 1},
		{"moat_ssh_connects_total", map[string]string{"node": "n1"}, 2},
		{"moat_ssh_round_trip_seconds", map[string]string{"node": "n1"}, 0.003},
		{"moat_ssh_round_trip_seconds", map[string]string{"node": "n2"}, math.NaN()},
		{"moat_metrics_pull_lag_seconds", map[string]string{"node": "n1"}, 2},
		{"moat_metrics_pull_bytes_total", map[string]string{"node": "n1"}, 4096},
		{"moat_metrics_pull_lag_records", map[string]string{"node": "n1"}, 3},
		{"moat_metrics_pull_records_total", map[string]string{"node": "n1", "outcome": "refused"}, 1},
		{"moat_metrics_pull_last_timestamp_seconds", map[string]string{"node": "n1"}, math.NaN()},
		{"moat_master_state_bytes", map[string]string{"file": "master.db"}, 1 << 20},
	}
	for _, tt := range tests {
		got, ok := value(fams, tt.name, tt.labels)
		switch {
		case math.IsNaN(tt.want) && ok:
			t.Errorf("%s%v = %v; want absent", tt.name, tt.labels, got)
		case !math.IsNaN(tt.want) && !ok:
			t.Errorf("%s%v absent; want %v", tt.name, tt.labels, tt.want)
		case ok && got != tt.want:
			t.Errorf("%s%v = %v; want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	for _, name := range []string{"moat_reconcile_duration_seconds", "moat_deploy_duration_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

// TestPromtool has promtool check the exposition, lint and all.
func TestPromtool(t *testing.T) {
	text, _ := scrape(t, snapshot())
	if out, err := Promtool(text); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestTimings(t *testing.T) {
	tm := NewTimings()
	tm.Reconciled(0.004, false)
	tm.Reconciled(0.5, true)
	tm.Deployed("deployed", 12)
	_, fams := scrape2(t, tm)
	h := fams["moat_reconcile_duration_seconds"].Metric[0].Histogram
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 0.504 {
		t.Errorf("reconcile histogram: %d passes, %v s; want 2, 0.504", h.GetSampleCount(), h.GetSampleSum())
	}
	if v, _ := value(fams, "moat_reconcile_errors_total", map[string]string{}); v != 1 {
		t.Errorf("reconcile errors %v; want 1", v)
	}
	for _, m := range fams["moat_deploy_duration_seconds"].Metric {
		want := map[string]uint64{"deployed": 1, "failed": 0}[m.Label[0].GetValue()]
		if m.Histogram.GetSampleCount() != want {
			t.Errorf("deploys %s: %d; want %d", m.Label[0].GetValue(), m.Histogram.GetSampleCount(), want)
		}
	}
	var nilT *Timings
	nilT.Reconciled(1, true) // a master without timings: no panic
	nilT.Deployed("failed", 1)
}

func scrape2(t *testing.T, tm *Timings) (string, map[string]*dto.MetricFamily) {
	h := Handler(func(context.Context) (Snapshot, error) { return Snapshot{}, nil }, tm)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return "", fams
}

// A state that cannot be read fails the scrape (500), not shows nothing.
func TestScrapeError(t *testing.T) {
	h := Handler(func(context.Context) (Snapshot, error) { return Snapshot{}, errors.New("database is locked") }, NewTimings())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "database is locked") {
		t.Errorf("got %d %q; want 500 naming the error", rec.Code, rec.Body)
	}
}

// FuzzScrape: whatever nodes say (names of routes, values), a scrape
// neither panics nor fails, and what it writes parses.
func FuzzScrape(f *testing.F) {
	f.Add("shop.example", "web", 1.5, 2.0)
	f.Add("\xff\xfe", "a\"b\\c\n", math.NaN(), math.Inf(-1))
	f.Fuzz(func(t *testing.T, host, app string, a, b float64) {
		s := snapshot()
		s.Latest = append(s.Latest,
			Sample{Latest: masterapi.Latest{Kind: "route", Name: host, Node: app, App: app, Time: t0, Values: []masterapi.Value{masterapi.Value(a), masterapi.Value(b)}}},
			Sample{Latest: masterapi.Latest{Kind: "route", Name: host, Node: app, App: app, Values: values(nodeapi.GroupRoute, map[string]float64{"errors": b})}},
			Sample{Latest: masterapi.Latest{Kind: "node", Name: "n1", Node: "n1", Values: make([]masterapi.Value, 200)}},
			Sample{Latest: masterapi.Latest{Kind: host, Name: app}},
		)
		scrape(t, s)
	})
}

// Promtool runs promtool check metrics on text: its lint included.
func Promtool(text string) (string, error) {
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestMaxScrapes: past MaxScrapes at once, across the master's handlers
// (one a request on the API), a scrape is answered 503 at once; once one
// ends, the next is served.
func TestMaxScrapes(t *testing.T) {
	tm := NewTimings()
	entered, release := make(chan struct{}), make(chan struct{})
	source := func(context.Context) (Snapshot, error) {
		entered <- struct{}{}
		<-release
		return snapshot(), nil
	}
	done := make(chan int, MaxScrapes)
	for range MaxScrapes {
		go func() {
			rec := httptest.NewRecorder()
			Handler(source, tm).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			done <- rec.Code
		}()
		<-entered
	}
	rec := httptest.NewRecorder()
	Handler(source, tm).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("scrape %d at once: %d; want 503", MaxScrapes+1, rec.Code)
	}
	close(release)
	for range MaxScrapes {
		if code := <-done; code != http.StatusOK {
			t.Errorf("a scrape let in: %d", code)
		}
	}
	go func() { <-entered }()
	rec = httptest.NewRecorder()
	Handler(source, tm).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("a scrape after the others ended: %d", rec.Code)
	}
}
