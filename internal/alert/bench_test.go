package alert

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkEvaluate: one evaluation of a cluster of 1,000 nodes with 10
// replicas each (some alerting), the alerts before given; the master
// does one every 2 s.
func BenchmarkEvaluate(b *testing.B) {
	now := t0.Add(time.Hour)
	s := Snapshot{Now: now}
	for i := range 100 {
		s.Apps = append(s.Apps, App{Name: fmt.Sprintf("app%d", i)})
	}
	for n := range 1000 {
		node := fmt.Sprintf("n%d", n)
		s.Nodes = append(s.Nodes, Node{Name: node, State: "up", Since: t0, DiskUsed: float64(n % 100), DiskTotal: 100, SampledAt: now})
		for r := range 10 {
			s.Replicas = append(s.Replicas, Replica{ID: fmt.Sprintf("%s-r%d", node, r), App: fmt.Sprintf("app%d", (n*10+r)%100), Node: node, Known: true,
				State: "running", Started: t0, Restarts: r, Mem: float64(r * 10), MemLimit: 100, SampledAt: now})
		}
	}
	prev := Evaluate(s, nil)
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(s, prev)
	}
	b.ReportMetric(float64(len(prev)), "alerts")
}
