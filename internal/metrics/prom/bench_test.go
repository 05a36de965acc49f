package prom

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// bigSnapshot is 1,000 nodes with 10 replicas each (1,000 apps of 10),
// a route per app, and the newest sample of every node, replica and
// route: what a master of that size shows at a scrape.
func bigSnapshot(nodes, perNode int) Snapshot {
	var s Snapshot
	full := func(kind byte) []masterapi.Value {
		v := make([]masterapi.Value, len(nodeapi.FieldsOf(kind)))
		for i := range v {
			v[i] = masterapi.Value(float64(i) * 1.5)
		}
		return v
	}
	now := time.Now()
	for i := range nodes {
		n := fmt.Sprintf("node%04d", i)
		s.Nodes = append(s.Nodes, masterapi.Node{Name: n, State: "up", Since: now, Replicas: perNode, MilliCPU: 1000, Memory: 1 << 30,
			Info: nodeapi.NodeInfo{CPUs: 8, MemoryBytes: 32 << 30}, Tenant: "default"})
		s.Latest = append(s.Latest, Sample{Latest: masterapi.Latest{Kind: "node", Name: n, Node: n, Time: now, Values: full(nodeapi.GroupNode)}})
		s.SSH = append(s.SSH, Conn{Node: n, State: "up", Since: now, Connects: 1, RoundTrip: time.Millisecond})
		s.Pulls = append(s.Pulls, Pull{Node: n, Behind: time.Second, Bytes: 1 << 20, Records: 1000, LastPull: now})
	}
	for a := range nodes {
		app := fmt.Sprintf("app%04d", a)
		s.Apps = append(s.Apps, masterapi.App{Name: app, Tenant: "default", Revision: 3, Stable: 3, Desired: perNode, Ready: perNode, Status: "deployed"})
		host := app + ".example.com"
		s.Latest = append(s.Latest, Sample{Latest: masterapi.Latest{Kind: "route", Name: host, Node: "node0000", App: app, Time: now, Values: full(nodeapi.GroupRoute)}, Tenant: "default"})
		for r := range perNode {
			id := fmt.Sprintf("%s-%06d", app, r)
			node := fmt.Sprintf("node%04d", (a+r)%nodes)
			s.Replicas = append(s.Replicas, masterapi.Replica{ID: id, App: app, Tenant: "default", Revision: 3, Node: node, Desired: "run", State: "ready", Health: "healthy", Restarts: 1})
			s.Latest = append(s.Latest, Sample{Latest: masterapi.Latest{Kind: "replica", Name: id, Node: node, App: app, Time: now, Values: full(nodeapi.GroupContainer)}, Tenant: "default"})
		}
	}
	s.Files = map[string]int64{"master.db": 1 << 30}
	return s
}

// BenchmarkScrape: one scrape of 1,000 nodes × 10 replicas' state, as the
// text exposition (client_golang's registry gathering the collector's
// const metrics, then encoded), against the baseline of the same state
// as the master's JSON API serves it (encoding/json of the snapshot:
// what GET /v1/nodes, /v1/apps, /v1/replicas and /v1/metrics/latest
// write together). bytes/scrape is the answer's size.
//
//	go test -run XXX -bench Scrape -benchmem ./internal/metrics/prom
func BenchmarkScrape(b *testing.B) {
	s := bigSnapshot(1000, 10)
	source := func(context.Context) (Snapshot, error) { return s, nil }
	for _, enc := range []string{"", "gzip"} {
		b.Run("prometheus"+map[string]string{"gzip": "-gzip"}[enc], func(b *testing.B) { benchScrape(b, source, enc) })
	}
	b.Run("json-baseline", func(b *testing.B) {
		var size int
		cpu := cpuTime()
		for b.Loop() {
			w := &countWriter{header: http.Header{}}
			if err := json.NewEncoder(w).Encode(s); err != nil {
				b.Fatal(err)
			}
			size = w.n
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(size), "bytes/scrape")
	})
}

// cpuTime is this process's user and system time in ns: on a shared
// machine, what a scrape cost rather than how long it waited.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func countSeries(text string) int {
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}

// countWriter is a response that counts its bytes and keeps none.
type countWriter struct {
	header http.Header
	n      int
}

func (w *countWriter) Header() http.Header         { return w.header }
func (w *countWriter) WriteHeader(int)             {}
func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// benchScrape scrapes source's state, the answer encoded as enc asks
// ("gzip": as Prometheus asks).
func benchScrape(b *testing.B, source Source, enc string) {
	h := Handler(source, NewTimings())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		b.Fatalf("%d %.300s", rec.Code, rec.Body)
	}
	series := countSeries(rec.Body.String())
	var size int
	req := httptest.NewRequest("GET", "/metrics", nil)
	if enc != "" {
		req.Header.Set("Accept-Encoding", enc)
	}
	cpu := cpuTime()
	for b.Loop() {
		w := &countWriter{header: http.Header{}}
		h.ServeHTTP(w, req)
		size = w.n
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(size), "bytes/scrape")
	b.ReportMetric(float64(series), "series")
}
