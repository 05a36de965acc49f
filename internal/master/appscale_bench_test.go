package master_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkAppAutoscaleStep: a 5× load step answered, on a real cluster
// with the defaults that matter (nodes sample every 10 s, the autoscaler
// decides every 15 s): an app autoscaled on rps 4 per replica takes 4
// requests/s through the edge (1 replica, at its target) until the
// autoscaler has seen it, then 20 (5 replicas' worth). Reported per step:
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
			m := c.StartMaster(v.args...)
			c.Enrol(m, "n1", "n2")
			m.ImportProbe(b, "probe:1")
			edge := net.JoinHostPort(nodeAddrOf(b, c, "n1"), "80")
			ctx := context.Background()
			var first, decided, running time.Duration
			for i := range b.N {
				b.StopTimer()
				app := fmt.Sprintf("web%d", i)
				host := app + ".test"
				r, err := m.Client.Deploy(ctx, masterapi.DeployRequest{File: "app.yaml", Spec: fmt.Sprintf(`name: %s
image: probe:1
args: [serve, ":8080"]
resources: {cpu: 100m, memory: 32Mi}
ports: [{name: http, port: 8080}]
health: {http: /, port: http, interval: 1s, timeout: 1s, retries: 5}
update: {deadline: 60s, drain: 1s}
ingress: [{host: %s, port: http}]
autoscale: {min: 1, max: 10, rps: 4}
`, app, host)})
				if err != nil {
					b.Fatal(err)
				}
				waitRevision(b, m, app, r.Revision)
				// The base load, until a sample of it has been seen and
				// decided on (20 s of samples at 10 s, a 15 s decision).
				stop := burnLoad(edge, host, 4, 0)
				time.Sleep(35 * time.Second) // the load's own duration, not synchronisation
				if n := replicaCount(b, m, app); n != 1 {
					b.Fatalf("at the base load, %d replicas: want 1", n)
				}
				stop()
				b.StartTimer()
				stop = burnLoad(edge, host, 20, 0)
				step := time.Now()
				waitCount(b, m, app, "first scale-up", 120*time.Second, func(n int) bool { return n > 1 })
				first += time.Since(step)
				waitCount(b, m, app, "5 replicas decided", 120*time.Second, func(n int) bool { return n >= 5 })
				decided += time.Since(step)
				deadline := time.Now().Add(120 * time.Second)
				for {
					reps, err := m.Client.Replicas(ctx, app)
					if err != nil {
						b.Fatal(err)
					}
					if n, _ := ready(reps); n >= 5 {
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("5 replicas not ready after 120 s")
					}
					time.Sleep(100 * time.Millisecond)
				}
				running += time.Since(step)
				b.StopTimer()
				stop()
				if err := m.Client.RemoveApp(ctx, app); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N)
			b.ReportMetric(first.Seconds()/n, "s-first-up")
			b.ReportMetric(decided.Seconds()/n, "s-decided")
			b.ReportMetric(running.Seconds()/n, "s-running")
			b.ReportMetric(decided.Seconds()/n/30, "decided/30s")
		})
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
