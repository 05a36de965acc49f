package master_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkAppAutoscaleStep: a 5× load step answered, on a real cluster
// with the defaults that matter (nodes sample every 10 s, the autoscaler
// decides every 15 s): an app autoscaled on rps 4 per replica takes 4
// requests/s through the edge (1 replica, at its target) until the
// autoscaler has seen it, then 20 (5 replicas' worth); before each step
// the app is back at 1 (a 20 s window: it only delays scale-downs). Reported per step:
// seconds until the first scale-up is decided, until 5 replicas are
// decided, and until 5 are ready; against the 30 s. "period"
// decides on the period only; "on-sample" also decides, for scale-ups,
// as soon as a fresh sample arrives (the default).
//
//	go test -run XXX -bench AppAutoscaleStep -benchtime 3x ./internal/master
func BenchmarkAppAutoscaleStep(b *testing.B) {
	for _, v := range []struct {
		name string
		args []string
	}{
		{"period", []string{"--app-autoscale-period-only"}},
		{"on-sample", nil},
	} {
		b.Run(v.name, func(b *testing.B) {
			c := testcluster.NewCluster(b, 2)
			c.AddNodeConf("n1", "edge=true")
			// The window only delays scale-downs: shortened so that each
			// step starts again from 1 replica soon.
			m := c.StartMaster(append([]string{"--app-autoscale-window", "20s"}, v.args...)...)
			c.Enrol(m, "n1", "n2")
			m.ImportProbe(b, "probe:1")
			edge := net.JoinHostPort(nodeAddrOf(b, c, "n1"), "80")
			ctx := context.Background()
			r, err := m.Client.Deploy(ctx, masterapi.DeployRequest{File: "app.yaml", Spec: `name: web
image: probe:1
args: [serve, ":8080"]
resources: {cpu: 100m, memory: 32Mi}
ports: [{name: http, port: 8080}]
health: {http: /, port: http, interval: 1s, timeout: 1s, retries: 5}
update: {deadline: 60s, drain: 1s}
ingress: [{host: web.test, port: http}]
autoscale: {min: 1, max: 10, rps: 4}
`})
			if err != nil {
				b.Fatal(err)
			}
			waitRevision(b, m, "web", r.Revision)
			var first, decided, running time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				// The base load (1 replica's worth) until the app is at 1
				// and has been for two samples and a decision.
				stop := burnLoad(edge, "web.test", 4, 0)
				for {
					waitCount(b, m, "web", "back to 1 at the base load", 3*time.Minute, func(n int) bool { return n == 1 })
					time.Sleep(30 * time.Second) // the base load's duration, not synchronisation
					if replicaCount(b, m, "web") == 1 {
						break
					}
				}
				stop()
				b.StartTimer()
				stop = burnLoad(edge, "web.test", 20, 0)
				step := time.Now()
				endTrace := traceCount(b, m, "web", step)
				waitCount(b, m, "web", "first scale-up", 2*time.Minute, func(n int) bool { return n > 1 })
				first += time.Since(step)
				waitCount(b, m, "web", "5 replicas decided", 2*time.Minute, func(n int) bool { return n >= 5 })
				decided += time.Since(step)
				deadline := time.Now().Add(2 * time.Minute)
				for {
					reps, err := m.Client.Replicas(ctx, "web")
					if err != nil {
						b.Fatal(err)
					}
					if n, _ := ready(reps); n >= 5 {
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("5 replicas not ready 2 min after the step")
					}
					time.Sleep(100 * time.Millisecond)
				}
				running += time.Since(step)
				b.StopTimer()
				endTrace()
				stop()
			}
			n := float64(b.N)
			b.ReportMetric(first.Seconds()/n, "s-first-up")
			b.ReportMetric(decided.Seconds()/n, "s-decided")
			b.ReportMetric(running.Seconds()/n, "s-running")
			b.ReportMetric(decided.Seconds()/n/30, "decided/30s")
		})
	}
}

// traceCount logs each change of the app's count, in seconds from step,
// until the returned func is called.
func traceCount(b *testing.B, m *testcluster.Master, app string, step time.Time) func() {
	done := make(chan struct{})
	var trace []string
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		last := -1
		for {
			revs, err := m.Client.Revisions(context.Background(), app)
			if err == nil {
				for _, r := range revs {
					if r.Target && r.Replicas != last {
						last = r.Replicas
						trace = append(trace, fmt.Sprintf("%.1fs: %d (%s)", time.Since(step).Seconds(), r.Replicas, r.Cause))
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		b.Logf("after the step: %s", strings.Join(trace, "; "))
	}
}

func nodeAddrOf(b *testing.B, c *testcluster.Cluster, name string) string {
	b.Helper()
	n, err := c.Node(name)
	if err != nil {
		b.Fatal(err)
	}
	return n.Addr.String()
}

// waitRevision follows a revision to the end of its rollout.
func waitRevision(b *testing.B, m *testcluster.Master, app string, rev int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var last masterapi.Progress
	if err := m.Client.Watch(ctx, app, rev, func(p masterapi.Progress) error { last = p; return nil }); err != nil {
		b.Fatalf("watch %s revision %d: %v (last %+v)", app, rev, err, last)
	}
}
