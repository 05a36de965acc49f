package master

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/spec"
)

// BenchmarkPrometheusMaster: a scrape of a master whose database holds
// 1,000 nodes and 1,000 apps of 10 replicas (10,000), from the look at
// SQLite to the exposition written, against the baseline of the same
// state as GET /v1/nodes, /v1/apps and /v1/replicas serve it (the
// master's views, JSON-encoded). No agents run (nodes unwatched) and no
// samples are held: BenchmarkScrape in internal/metrics/prom measures
// those series.
//
//	go test -run XXX -bench PrometheusMaster -benchmem ./internal/master
func BenchmarkPrometheusMaster(b *testing.B) {
	const nodes, apps, perApp = 1000, 1000, 10
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "master")
	if _, _, err := Init(ctx, dir); err != nil {
		b.Fatal(err)
	}
	m, err := Open(Config{Dir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.db.Close() })
	for i := range nodes {
		n := store.Node{Name: fmt.Sprintf("node%04d", i), Addr: "127.0.0.1:22", User: "root", HostKey: "ssh-ed25519 AAAA", Enrolled: time.Now()}
		n.Info.CPUs, n.Info.MemoryBytes = 8, 32<<30
		if err := m.db.PutNode(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
	var reps []store.Replica
	for a := range apps {
		name := fmt.Sprintf("app%04d", a)
		sp, _ := json.Marshal(spec.App{Name: name, Image: "probe:1", Replicas: perApp, Resources: spec.Resources{MilliCPU: 100, MemoryBytes: 32 << 20}})
		rev, err := m.db.NewRevision(ctx, store.Revision{App: name, Spec: sp, Image: "sha256:0", Template: "t", Cause: "deploy"})
		if err != nil {
			b.Fatal(err)
		}
		for r := range perApp {
			reps = append(reps, store.Replica{ID: fmt.Sprintf("%s-%06d", name, r), App: name, Revision: rev.Revision, Template: "t",
				Node: fmt.Sprintf("node%04d", (a+r)%nodes), Desired: store.Run, Created: time.Now()})
		}
	}
	if err := m.db.AddReplicas(ctx, reps); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v1/prometheus", nil)
	b.Run("prometheus", func(b *testing.B) {
		h := m.Prometheus()
		var size int
		cpu := cpuTime()
		for b.Loop() {
			w := &countWriter{header: http.Header{}}
			h.ServeHTTP(w, req)
			if w.code != 0 && w.code != http.StatusOK {
				b.Fatalf("scrape: %d", w.code)
			}
			size = w.n
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(size), "bytes/scrape")
	})
	b.Run("json-baseline", func(b *testing.B) {
		all := allTenants(ctx)
		var size int
		cpu := cpuTime()
		for b.Loop() {
			w := &countWriter{header: http.Header{}}
			ns, err := m.Nodes(all)
			if err != nil {
				b.Fatal(err)
			}
			as, err := m.Apps(all)
			if err != nil {
				b.Fatal(err)
			}
			rs, err := m.Replicas(all, "")
			if err != nil {
				b.Fatal(err)
			}
			for _, v := range []any{ns, as, rs} {
				if err := json.NewEncoder(w).Encode(v); err != nil {
					b.Fatal(err)
				}
			}
			size = w.n
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(size), "bytes/scrape")
	})
}

// cpuTime is this process's user and system time in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// countWriter is a response that counts its bytes and keeps none.
type countWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *countWriter) Header() http.Header         { return w.header }
func (w *countWriter) WriteHeader(code int)        { w.code = code }
func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
