package node

import (
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/edge"
	"github.com/moatcloud/moat/internal/metrics/ring"
	"github.com/moatcloud/moat/internal/metrics/sample"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func TestParseMetricsQuery(t *testing.T) {
	tests := []struct {
		after, max, wait string
		want             metricsQuery
		wantErr          bool
	}{
		{"", "", "", metricsQuery{0, nodeapi.MaxMetricsPage, 0}, false},
		{"42", "10", "1m30s", metricsQuery{42, 10, nodeapi.MaxMetricsWait}, false},
		{"0", "100000", "2s", metricsQuery{0, nodeapi.MaxMetricsPage, 2 * time.Second}, false},
		{"-1", "", "", metricsQuery{}, true},
		{"x", "", "", metricsQuery{}, true},
		{"", "0", "", metricsQuery{}, true},
		{"", "-3", "", metricsQuery{}, true},
		{"", "", "-1s", metricsQuery{}, true},
		{"", "", "soon", metricsQuery{}, true},
	}
	for _, tt := range tests {
		got, err := parseMetricsQuery(tt.after, tt.max, tt.wait)
		if (err != nil) != tt.wantErr || !tt.wantErr && got != tt.want {
			t.Errorf("parseMetricsQuery(%q, %q, %q) = %+v, %v; want %+v, error %v", tt.after, tt.max, tt.wait, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestHealthValue(t *testing.T) {
	for h, want := range map[string]float64{nodeapi.HealthHealthy: 1, nodeapi.HealthUnhealthy: 0, nodeapi.HealthStarting: 0.5, "": math.NaN()} {
		if got := healthValue(h); got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("healthValue(%q) = %v, want %v", h, got, want)
		}
	}
}

// TestMetricsValuesInFieldOrder: the values the node writes are as many
// as the contract's fields.
func TestMetricsValuesInFieldOrder(t *testing.T) {
	if got := len(nodeValues(sampleNode(), 3)); got != len(nodeapi.NodeFields) {
		t.Errorf("%d node values, %d fields", got, len(nodeapi.NodeFields))
	}
	if got := len(containerValues(sampleContainer(), 2, "")); got != len(nodeapi.ContainerFields) {
		t.Errorf("%d container values, %d fields", got, len(nodeapi.ContainerFields))
	}
	v := nodeValues(sampleNode(), 3)
	g := nodeapi.MetricsGroup{Kind: nodeapi.GroupNode, Name: "node", Values: v}
	if g.Value("containers") != 3 || g.Value("mem_total") != 1000 || g.Value("net_tx") != 9 {
		t.Errorf("node values %v out of the fields' order", v)
	}
	c := nodeapi.MetricsGroup{Kind: nodeapi.GroupContainer, Name: "x", Values: containerValues(sampleContainer(), 2, nodeapi.HealthStarting)}
	if c.Value("restarts") != 2 || c.Value("health") != 0.5 || c.Value("mem_limit") != 64 || c.Value("net_tx") != 7 {
		t.Errorf("container values %v out of the fields' order", c.Values)
	}
}

// TestMetricsRingFull: a small ring filled many times over keeps its
// size, keeps the newest, and the route says Gap to a cursor older than
// the oldest it keeps.
func TestMetricsRingFull(t *testing.T) {
	root := t.TempDir()
	d, err := New(Config{Root: root, AuthorizedKeys: filepath.Join(root, "authorized_keys"), metricsSlots: 8, MetricsInterval: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.metrics.ring.Close()
	file := metricsRingFile(root)
	want := ring.FileSize(8, ring.DefaultSlotSize)
	t0 := time.Now()
	for i := range 30 {
		d.sampleOnce(t0.Add(time.Duration(i) * time.Second))
		fi, err := os.Stat(file)
		if err != nil || fi.Size() != want {
			t.Fatalf("after %d samples the ring is %v bytes (%v), want %d", i+1, fi.Size(), err, want)
		}
	}
	if o, n := d.metrics.ring.Oldest(), d.metrics.ring.Newest(); o != 23 || n != 30 {
		t.Errorf("ring keeps %d..%d, want the newest 8: 23..30", o, n)
	}
	get := func(q string) nodeapi.MetricsPage {
		w := httptest.NewRecorder()
		d.routes().ServeHTTP(w, httptest.NewRequest("GET", "/v1/metrics?"+q, nil))
		if w.Code != http.StatusOK {
			t.Fatalf("GET /v1/metrics?%s: %d %s", q, w.Code, w.Body)
		}
		var p nodeapi.MetricsPage
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := get("after=5&max=3")
	if !p.Gap || len(p.Raw) != 3 || p.Raw[0].Seq != 23 || p.Oldest != 23 || p.Newest != 30 || time.Duration(p.Interval) != time.Second {
		t.Errorf("page after a lost cursor: gap %v, %d records from %v, oldest %d newest %d interval %s; want a gap, 3 from 23", p.Gap, len(p.Raw), p.Raw, p.Oldest, p.Newest, time.Duration(p.Interval))
	}
	p = get("after=28")
	if p.Gap || len(p.Raw) != 2 || p.Raw[0].Seq != 29 {
		t.Fatalf("page after 28: gap %v, %d records", p.Gap, len(p.Raw))
	}
	rec, err := nodeapi.DecodeMetrics(p.Raw[1].Data)
	if err != nil || len(rec.Groups) != 1 || rec.Groups[0].Kind != nodeapi.GroupNode || !rec.Time.Equal(t0.Add(29*time.Second)) {
		t.Errorf("record 30: %+v, %v; want the node's group at the 30th sample's time", rec, err)
	}
	if g := rec.Groups[0]; !(g.Value("mem_total") > 0) || g.Value("containers") != 0 {
		t.Errorf("node group %v", g.Values)
	}
	// A long poll returns at the next sample.
	done := make(chan nodeapi.MetricsPage)
	go func() { done <- get("after=30&wait=1m") }()
	d.sampleOnce(t0.Add(31 * time.Second))
	if p := <-done; len(p.Raw) != 1 || p.Raw[0].Seq != 31 {
		t.Errorf("long poll: %d records %v, want seq 31", len(p.Raw), p.Raw)
	}
}

func sampleNode() sample.Node {
	return sample.Node{CPU: 1, Load1: 2, MemUsed: 500, MemTotal: 1000, DiskUsed: 3, DiskTotal: 4, DiskRead: 5, DiskWrite: 6, NetRx: 8, NetTx: 9}
}

func sampleContainer() sample.Container {
	return sample.Container{CPU: 1, Mem: 32, MemLimit: 64, OOMKills: 0, Pids: 3, NetRx: 6, NetTx: 7}
}

func TestRouteGroups(t *testing.T) {
	nan := math.NaN()
	prev := map[string]edge.RouteStats{
		"a.test":    {Requests: 100, Errors: 1, LatencySum: 10 * time.Second},
		"b.test":    {Requests: 5, Errors: 0, LatencySum: time.Second},
		"c.test":    {Requests: 50},
		"idle.test": {Requests: 7, LatencySum: time.Second},
	}
	cur := map[string]edge.RouteStats{
		"a.test":    {Requests: 120, Errors: 3, LatencySum: 11 * time.Second, LatencyMax: 200 * time.Millisecond},
		"b.test":    {Requests: 5, Errors: 0, LatencySum: time.Second},
		"c.test":    {Requests: 2}, // went backwards
		"idle.test": {Requests: 7, LatencySum: time.Second},
		"new.test":  {Requests: 3, LatencySum: time.Second, LatencyMax: time.Second},
		"bad\x01":   {Requests: 3},
		"*":         {Requests: 10},
	}
	got := routeGroups(cur, prev, 10)
	want := map[string][]float64{
		"*":         {nan, nan, nan, nan},
		"a.test":    {2, 0.2, 0.05, 0.2},
		"b.test":    {0, 0, nan, nan},
		"c.test":    {nan, nan, nan, nan},
		"idle.test": {0, 0, nan, nan},
		"new.test":  {nan, nan, nan, nan},
	}
	if len(got) != len(want) {
		t.Fatalf("%d groups, want %d: %v", len(got), len(want), got)
	}
	for i, g := range got {
		if i > 0 && got[i-1].Name >= g.Name || g.Kind != nodeapi.GroupRoute || len(g.Values) != len(nodeapi.RouteFields) {
			t.Errorf("group %d %+v: out of order, wrong kind or length", i, g)
		}
		w := want[g.Name]
		for j := range w {
			if d := g.Values[j] - w[j]; !(math.Abs(d) < 1e-9) && !(math.IsNaN(g.Values[j]) && math.IsNaN(w[j])) {
				t.Errorf("%s %s = %v, want %v", g.Name, nodeapi.RouteFields[j].Name, g.Values[j], w[j])
			}
		}
	}
	if g := routeGroups(cur, nil, 10); len(g) != 6 || !math.IsNaN(g[1].Values[0]) {
		t.Errorf("first sample: %v; want every value unknown", g)
	}
}
