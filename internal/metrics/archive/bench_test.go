package archive

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/metrics/rrd"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// nodeRecord is one sample of node name with ten containers of apps
// app0..app9 (one each), as a node sends it.
func nodeRecord(name string, at time.Time) nodeapi.MetricsRecord {
	r := nodeapi.MetricsRecord{Time: at, Groups: []nodeapi.MetricsGroup{nodeGroup(name, 1)}}
	for i := range 10 {
		r.Groups = append(r.Groups, ctrGroup(fmt.Sprintf("app%d-%s", i, replicaSuffix(name, i)), 0.5, 100<<20))
	}
	return r
}

// replicaSuffix makes a six-character replica suffix unique per node and
// container.
func replicaSuffix(node string, i int) string {
	h := uint32(2166136261)
	for j := 0; j < len(node); j++ {
		h = (h ^ uint32(node[j])) * 16777619
	}
	return fmt.Sprintf("%05x%d", h&0xfffff, i)
}

// BenchmarkIngestNode: one node's record (the node and ten containers)
// into the store, against the same values Added to in-memory rrd Series
// (one per field: 11 + 10×9 + 10×10) in the same run.
func BenchmarkIngestNode(b *testing.B) {
	b.Run("archive", func(b *testing.B) {
		c := &clock{t: t0}
		s, err := Open(b.TempDir(), Options{Now: c.now, GCInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		at := t0
		r := nodeRecord("n1", at)
		s.Ingest("n1", r)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			at = at.Add(10 * time.Second)
			c.set(at)
			r.Time = at
			if err := s.Ingest("n1", r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rrd-in-memory", func(b *testing.B) {
		series := make([]*rrd.Series, 11+10*9+10*10)
		for i := range series {
			series[i], _ = rrd.New(rrd.Default)
		}
		at := t0
		rec := nodeRecord("n1", at)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			at = at.Add(10 * time.Second)
			k := 0
			for _, g := range rec.Groups {
				n := len(g.Values)
				if g.Kind == nodeapi.GroupContainer {
					n = 2 * n // its replica's series and its app's
				}
				for j := range n {
					series[k].Add(at, g.Values[j%len(g.Values)])
					k++
				}
			}
		}
	})
}

// BenchmarkIngestCluster: one round of 1,000 nodes with ten containers
// each (11,000 entities and 10 apps: ~100,000 series), every file made
// beforehand; ns/op is one 10 s round, so ns/op ÷ 1e10 is the cores the
// master spends ingesting at that scale.
func BenchmarkIngestCluster(b *testing.B) {
	const nodes = 1000
	c := &clock{t: t0}
	s, err := Open(b.TempDir(), Options{Now: c.now, GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	names := make([]string, nodes)
	recs := make([]nodeapi.MetricsRecord, nodes)
	for i := range names {
		names[i] = fmt.Sprintf("node%04d", i)
		recs[i] = nodeRecord(names[i], t0)
	}
	round := func(at time.Time) {
		c.set(at)
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < nodes; i += 2 {
					recs[i].Time = at
					if err := s.Ingest(names[i], recs[i]); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		wg.Wait()
	}
	round(t0)
	at := t0
	b.ResetTimer()
	for range b.N {
		at = at.Add(10 * time.Second)
		round(at)
	}
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(st.Archives), "files")
}

// historyStore is a node with one sample an hour for a year and one
// every 10 s for the last day.
func historyStore(b *testing.B) (*Store, time.Time) {
	end := t0.Add(365 * 24 * time.Hour)
	c := &clock{t: end}
	s, err := Open(b.TempDir(), Options{Now: c.now, GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	day := end.Add(-24 * time.Hour)
	for at := t0; at.Before(day); at = at.Add(time.Hour) {
		s.Ingest("n1", rec(at, nodeGroup("n1", float64(at.Hour()))))
	}
	for at := day; at.Before(end); at = at.Add(10 * time.Second) {
		s.Ingest("n1", rec(at, nodeGroup("n1", float64(at.Minute()))))
	}
	return s, end
}

// BenchmarkHistory: a year at 1 h (8,760 points of 11 fields) and a day
// at 10 s (8,640 points).
func BenchmarkHistory(b *testing.B) {
	s, end := historyStore(b)
	for _, tt := range []struct {
		name   string
		span   time.Duration
		step   time.Duration
		points int
	}{
		{"year-1h", 365 * 24 * time.Hour, time.Hour, 10000},
		{"day-10s", 24 * time.Hour, 0, 10000},
		{"year-600-points", 365 * 24 * time.Hour, 0, 600},
	} {
		b.Run(tt.name, func(b *testing.B) {
			q := masterapi.MetricsQuery{Kind: "node", Name: "n1", Since: end.Add(-tt.span), Until: end, Step: tt.step, Points: tt.points}
			b.ReportAllocs()
			for range b.N {
				m, err := s.History(q)
				if err != nil || len(m.Times) < tt.points*8/10 || math.IsNaN(float64(m.Avg[0][len(m.Times)-2])) {
					b.Fatalf("%d points, %v", len(m.Times), err)
				}
			}
		})
	}
}
