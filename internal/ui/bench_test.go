package ui

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/metrics/archive"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// The dashboard's budgets (issue 14): the overview of 100 nodes with 30
// days of history in 100 ms, a year's graph in 50 ms, data and rendering.
// The handler reads a fake master whose history is a real archive store
// (internal/metrics/archive) filled with a node sample every benchSample,
// through the real client over a unix socket. Each benchmark has its
// baseline in the same run: the master API calls the page makes, without
// drawing or rendering anything.

const benchSample = 5 * time.Minute

// benchStore fills a store with days of samples of nodes n000..., ending
// at end.
func benchStore(b *testing.B, nodes, days int, end time.Time) *archive.Store {
	b.Helper()
	s, err := archive.Open(b.TempDir(), archive.Options{Now: func() time.Time { return end }, GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	start := end.Add(-time.Duration(days) * 24 * time.Hour)
	for i := range nodes {
		name := fmt.Sprintf("n%03d", i)
		k := 0
		for t := start; !t.After(end); t = t.Add(benchSample) {
			x := float64(k) / 50
			vals := []float64{1 + math.Sin(x), 2 + math.Cos(x), 3e9 + 1e9*math.Sin(x/3), 8e9, 40e9 + float64(k)*1e4, 100e9,
				1e6 * (1 + math.Sin(x)), 5e5, 2e6 * (1 + math.Cos(x)), 1e6, 10}
			if err := s.Ingest(name, nodeapi.MetricsRecord{Time: t, Groups: []nodeapi.MetricsGroup{{Kind: nodeapi.GroupNode, Name: name, Values: vals}}}); err != nil {
				b.Fatal(err)
			}
			k++
		}
	}
	return s
}

// benchMaster is a master of n nodes and 20 apps whose history comes from
// the store.
func benchMaster(b *testing.B, n int, s *archive.Store) *masterapi.Client {
	f := &fakeMaster{history: s.History, latest: s.Latest(), noFeeds: true}
	for i := range n {
		f.nodes = append(f.nodes, masterapi.Node{Name: fmt.Sprintf("n%03d", i), State: "up", Info: nodeapi.NodeInfo{CPUs: 4}})
	}
	for i := range 20 {
		f.apps = append(f.apps, masterapi.App{Name: fmt.Sprintf("app%02d", i), Desired: 3, Ready: 3, Status: "deployed"})
	}
	return f.client(b)
}

func serve(b *testing.B, h http.Handler, path string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	if w.Code != http.StatusOK {
		b.Fatalf("%s: %d %s", path, w.Code, w.Body)
	}
}

// BenchmarkOverview serves the overview of 100 nodes with 30 days of
// history each (the baseline: the API calls it makes, nothing drawn).
func BenchmarkOverview(b *testing.B) {
	end := time.Now()
	s := benchStore(b, 100, 30, end)
	c := benchMaster(b, 100, s)
	h := New(c, nil)
	h.now = func() time.Time { return end }
	serve(b, h, "/")
	body := httptest.NewRecorder()
	h.ServeHTTP(body, httptest.NewRequest(http.MethodGet, "/", nil))
	if n := bytes.Count(body.Body.Bytes(), []byte(`class="sparkline" d="M`)); n != 300 {
		b.Fatalf("%d sparklines drawn, want 300", n)
	}
	b.Run("page", func(b *testing.B) {
		for b.Loop() {
			serve(b, h, "/")
		}
	})
	b.Run("baseline", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			nodes, _ := c.Nodes(ctx)
			c.Apps(ctx)
			c.MetricsLatest(ctx)
			// As the page does: sparkFetchers at once.
			sem := make(chan struct{}, sparkFetchers)
			var wg sync.WaitGroup
			for _, n := range nodes {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					if _, err := c.MetricsHistory(ctx, masterapi.MetricsQuery{Kind: masterapi.MetricsNode, Name: n.Name,
						Since: end.Add(-sparkSpan), Until: end, Step: time.Hour, Points: sparkPoints}); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
		}
	})
}

// BenchmarkYearGraph reads a node's year from its archive and draws one
// graph as its page does (SVG through the template); "page" serves the
// node's page in its year view (seven graphs from one read); the baseline
// is the read alone.
func BenchmarkYearGraph(b *testing.B) {
	end := time.Now()
	s := benchStore(b, 1, 365, end)
	c := benchMaster(b, 1, s)
	h := New(c, nil)
	h.now = func() time.Time { return end }
	ctx := context.Background()
	tmpl := h.pages["graph"]
	var buf bytes.Buffer
	b.Run("graph", func(b *testing.B) {
		for b.Loop() {
			m, err := h.history(ctx, masterapi.MetricsNode, "n000", year, end)
			if err != nil {
				b.Fatal(err)
			}
			g := draw(nodeGraphs[1].build(m, year, end), graphW, graphH)
			buf.Reset()
			if err := tmpl.ExecuteTemplate(&buf, "graph", g); err != nil {
				b.Fatal(err)
			}
			if g.Empty || !bytes.Contains(buf.Bytes(), []byte(`class="avg s0" d="M`)) {
				b.Fatal("nothing drawn")
			}
		}
	})
	b.Run("page", func(b *testing.B) {
		for b.Loop() {
			serve(b, h, "/nodes/n000?range=year")
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			if _, err := h.history(ctx, masterapi.MetricsNode, "n000", year, end); err != nil {
				b.Fatal(err)
			}
		}
	})
}
