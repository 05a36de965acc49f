package ui

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

const hostile = `<script>alert("pwned")</script><img src=x onerror=alert(1)>`

// synthetic answers any history query with a wave on every field, at the
// step asked (5 min at least), unknown in its first tenth.
func synthetic(q masterapi.MetricsQuery) (masterapi.Metrics, error) {
	kind := map[string]byte{masterapi.MetricsNode: nodeapi.GroupNode, masterapi.MetricsApp: nodeapi.GroupContainer, masterapi.MetricsRoute: nodeapi.GroupRoute}[q.Kind]
	fields := nodeapi.FieldsOf(kind)
	if q.Kind == masterapi.MetricsApp {
		fields = append(fields[:len(fields):len(fields)], nodeapi.Field{Name: "replicas"})
	}
	step := max(q.Step, 5*time.Minute)
	m := masterapi.Metrics{Kind: q.Kind, Name: q.Name, Step: step.Seconds(), Fields: fields}
	for t := q.Since.Truncate(step); !t.After(q.Until); t = t.Add(step) {
		m.Times = append(m.Times, t.Unix())
	}
	m.Avg, m.Min, m.Max = make([][]masterapi.Value, len(fields)), make([][]masterapi.Value, len(fields)), make([][]masterapi.Value, len(fields))
	for f := range fields {
		for i := range m.Times {
			v := 1e9 * (1.5 + math.Sin(float64(i)/20+float64(f)))
			if i < len(m.Times)/10 {
				v = math.NaN()
			}
			m.Avg[f] = append(m.Avg[f], masterapi.Value(v))
			m.Min[f] = append(m.Min[f], masterapi.Value(v*0.8))
			m.Max[f] = append(m.Max[f], masterapi.Value(v*1.2))
		}
	}
	return m, nil
}

func testMaster() *fakeMaster {
	now := time.Now()
	return &fakeMaster{
		nodes: []masterapi.Node{
			{Name: "n1", State: "up", Since: now.Add(-time.Hour), Info: nodeapi.NodeInfo{CPUs: 4}, Replicas: 2},
			{Name: "n2", State: "down", Since: now.Add(-time.Minute), Error: hostile},
		},
		apps: []masterapi.App{{Name: "web", Revision: 3, Stable: 2, Desired: 3, Ready: 2, Status: "rolling", Image: "sha256:0123456789abcdef", Created: now}},
		replicas: []masterapi.Replica{
			{ID: "web-aaaaaa", App: "web", Revision: 3, Node: "n1", Desired: "run", State: "ready"},
			{ID: "web-bbbbbb", App: "web", Revision: 3, Node: "n1", Desired: "run", State: "starting", Message: hostile},
		},
		revisions: map[string][]masterapi.Revision{"web": {
			{Revision: 2, Cause: "deploy", Status: "deployed", Replicas: 3},
			{Revision: 3, Cause: "scale", Status: "rolling", Replicas: 3, Target: true},
		}},
		logs: map[string][]masterapi.LogLine{"web": {
			{Replica: "web-aaaaaa", Node: "n1", LogEntry: nodeapi.LogEntry{Time: now.Add(-time.Second), Stream: "stdout", Line: "hello"}},
			{Replica: "web-bbbbbb", Node: "n1", LogEntry: nodeapi.LogEntry{Time: now, Stream: "stderr", Line: hostile}},
		}},
		events: []masterapi.Event{{ID: 1, Time: now, Kind: masterapi.EventDeploy, App: "web", Revision: 3, Message: hostile}},
		alerts: masterapi.AlertList{Active: []masterapi.Alert{{Rule: "node-down", Severity: "critical", Node: "n2", Summary: "node n2 is down", Since: now}}},
		latest: []masterapi.Latest{{Kind: masterapi.MetricsNode, Name: "n1", Node: "n1", Time: now,
			Values: []masterapi.Value{3.8, 1, 1 << 30, 2 << 30, 10, 100, 0, 0, 0, 0, 2}},
			{Kind: masterapi.MetricsRoute, Name: "web.example", Node: "edge1", App: "web", Time: now, Values: []masterapi.Value{12, 0.5, 0.02, 0.3}}},
		history: synthetic,
	}
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

// TestPages renders every page from a master's answers: the content is
// there, graphs are drawn, and what nodes and apps said is escaped.
func TestPages(t *testing.T) {
	h := New(testMaster().client(t), nil)
	tests := []struct {
		path string
		want []string
	}{
		{"/", []string{`href="/nodes/n1"`, ">n2<", `class="ready">2/3<`, "node n2 is down", `class="sparkline" d="M`, ">95%<", "Recent events"}},
		{"/nodes/n1", []string{"<h1>n1</h1>", "web-aaaaaa", `class="avg s0" d="M`, `class="band s0" d="M`, `class="limit"`, `href="/graphs/node/n1/cpu"`}},
		{"/nodes/n1?range=year", []string{`aria-current="page">year<`, `class="avg s0" d="M`}},
		{"/apps/web", []string{"<h1>web</h1>", `class="ready">2/3<`, "3 (target)", "hello", `class="avg s1" d="M`, "web-bbbbbb", "Route web.example", `href="/graphs/route/web.example/latency"`}},
		{"/graphs/route/web.example/requests", []string{"Yearly", `class="avg s1" d="M`}},
		{"/graphs/app/web/mem", []string{"Daily", "Weekly", "Monthly", "Yearly", `class="avg s0" d="M`}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := get(t, h, tt.path)
			body := w.Body.String()
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, body)
			}
			if !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("CSP %q", w.Header().Get("Content-Security-Policy"))
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("no %q in the page", s)
				}
			}
			if strings.Contains(body, "<script") || strings.Contains(body, "<img") {
				t.Errorf("a hostile string reached the page unescaped:\n%s", body)
			}
		})
	}
	if body := get(t, h, "/apps/web").Body.String(); !strings.Contains(body, "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;") {
		t.Errorf("the hostile log line is not shown as text")
	}
}

// TestPageErrors: what is not there is a 404 page, a write is refused,
// and a master without the events and alerts routes still has an
// overview, with those sections empty.
func TestPageErrors(t *testing.T) {
	f := testMaster()
	f.noFeeds = true
	f.history = nil
	h := New(f.client(t), nil)
	for path, code := range map[string]int{"/nodes/nope": 404, "/apps/nope": 404, "/nope": 404, "/graphs/pod/x/cpu": 400, "/graphs/node/n1/nope": 404} {
		if w := get(t, h, path); w.Code != code {
			t.Errorf("%s: status %d, want %d", path, w.Code, code)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
	body := get(t, h, "/").Body.String()
	for _, s := range []string{"No alerts firing.", "No events.", ">n1<"} {
		if !strings.Contains(body, s) {
			t.Errorf("overview without feeds: no %q", s)
		}
	}
	if body := get(t, h, "/nodes/n1").Body.String(); !strings.Contains(body, "no data") {
		t.Errorf("a node without history shows no empty graph")
	}
	// A tenant's operator, who may not list nodes, still has an overview
	// of their apps.
	f = testMaster()
	f.noNodes = true
	h = New(f.client(t), nil)
	if w := get(t, h, "/"); w.Code != 200 || !strings.Contains(w.Body.String(), `href="/apps/web"`) || !strings.Contains(w.Body.String(), "nodes: node.ls") {
		t.Errorf("overview without nodes: %d\n%s", w.Code, w.Body)
	}
	for _, p := range []string{"/static/ui.css", "/static/favicon.svg", "/favicon.ico"} {
		if w := get(t, h, p); w.Code != 200 {
			t.Errorf("%s: %d", p, w.Code)
		}
	}
}
