package master_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkPrometheusScale: GET /v1/prometheus from a real master holding
// 1,000 simulated nodes (scale_node_test.go) running 10,000 replicas, ten
// per node, every node sampling itself and its containers every 10 s
// (scale_metrics_test.go), so the scrape has every newest sample. Each
// op is one scrape over the master's socket; measured with it: the
// master's CPU per scrape and the answer's size. Baseline in the same
// run: the same state as the JSON API serves it (GET /v1/nodes,
// /v1/replicas and /v1/metrics/latest in a row).
//
//	go test -run XXX -bench PrometheusScale -benchtime 10x -timeout 30m ./internal/master
func BenchmarkPrometheusScale(b *testing.B) {
	const nodes, apps, perApp = 1000, 10, 1000
	testcluster.RequireRoot(b)
	fake, m, _ := startSimCluster(b, nodes)
	m.ImportProbe(b, "probe:1")
	waitDescribed(b, m, nodes)
	for i := range apps {
		if _, err := m.Client.Deploy(context.Background(), masterapi.DeployRequest{Spec: simSpec(simApp(i), perApp)}); err != nil {
			b.Fatal(err)
		}
	}
	waitAllReady(b, m, apps*perApp, time.Now())
	now := time.Now()
	for i, n := range fake.nodes {
		n.setMetrics(now.Add(time.Duration(i)*10*time.Second/nodes), 10*time.Second, nil)
	}
	// Every node's and replica's newest sample held.
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		latest, err := m.Client.MetricsLatest(context.Background())
		if err == nil && len(latest) >= nodes+apps*perApp {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d newest samples after 3 minutes (%v); want %d", len(latest), err, nodes+apps*perApp)
		}
	}
	pid := m.Pid()
	// The master's own work meanwhile (pulls, keepalives, reconcile):
	// taken out of each scrape's CPU.
	c0, t0 := cpuTicks(b, pid), time.Now()
	time.Sleep(20 * time.Second)
	background := float64(cpuTicks(b, pid)-c0) * 1e7 / float64(time.Since(t0)) // CPU ns per ns
	b.Logf("master's background: %.3f cores", background)
	scrape := func(paths ...string) (size int) {
		for _, p := range paths {
			resp, err := m.Client.HTTP.Get("http://master" + p)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("GET %s: %d", p, resp.StatusCode)
			}
			size += int(n)
		}
		return size
	}
	for _, c := range []struct {
		name  string
		paths []string
	}{
		{"prometheus", []string{"/v1/prometheus"}},
		{"json-baseline", []string{"/v1/nodes", "/v1/replicas", "/v1/metrics/latest"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var size int
			cpu0, start := cpuTicks(b, pid), time.Now()
			for b.Loop() {
				size = scrape(c.paths...)
			}
			cpu := float64(cpuTicks(b, pid)-cpu0) * 1e7
			b.ReportMetric(cpu/float64(b.N), "master-cpu-ns/op")
			b.ReportMetric((cpu-background*float64(time.Since(start)))/float64(b.N), "net-master-cpu-ns/op")
			b.ReportMetric(float64(size), "bytes/scrape")
		})
	}
	text := new(strings.Builder)
	resp, err := m.Client.HTTP.Get("http://master/v1/prometheus")
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(text, resp.Body)
	resp.Body.Close()
	series := 0
	for _, line := range strings.Split(text.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			series++
		}
	}
	b.Logf("%d series", series)
}
