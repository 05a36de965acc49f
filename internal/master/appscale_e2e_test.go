package master_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// burnLoad sends rate requests a second for host to the edge, each
// making a replica use ms of CPU (the probe's /burn), open loop: a slow
// answer does not slow the load. stop ends it and says how many failed.
func burnLoad(edge, host string, rate, ms int) (stop func() (ok, failed int64)) {
	var okN, failed atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	client := &http.Client{Timeout: 20 * time.Second}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, _, err := edgeGet(client, edge, host, fmt.Sprintf("/burn?ms=%d", ms))
				if err == nil && code == http.StatusOK {
					okN.Add(1)
				} else {
					failed.Add(1)
				}
			}()
		}
	}()
	return func() (int64, int64) {
		close(done)
		wg.Wait()
		return okN.Load(), failed.Load()
	}
}

// replicaCount is the replicas the app's target revision asks for.
func replicaCount(t testing.TB, m *testcluster.Master, app string) int {
	t.Helper()
	revs, err := m.Client.Revisions(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		if r.Target {
			return r.Replicas
		}
	}
	t.Fatalf("%s has no target revision: %+v", app, revs)
	return 0
}

// waitCount polls until the app's count satisfies ok, and returns it.
func waitCount(t testing.TB, m *testcluster.Master, app, what string, timeout time.Duration, ok func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := replicaCount(t, m, app)
		if ok(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %d replicas after %s", what, n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// burnSpec is web.test's probe with 200m of CPU and a health check that a
// replica busy at its limit still passes.
func burnSpec(autoscale string) string {
	return `name: web
image: probe:1
args: [serve, ":8080"]
resources: {cpu: 200m, memory: 32Mi}
ports: [{name: http, port: 8080}]
health: {http: /, port: http, interval: 1s, timeout: 1s, retries: 5}
update: {deadline: 30s, drain: 2s}
ingress: [{host: web.test, port: http}]
` + autoscale + "\n"
}

// TestAppAutoscale: a real cluster (an edge and a node sampling every
// second), web autoscaled on cpu 50 % of its 200m. Load through the edge
// (15 requests/s of 20 ms CPU: 0.3 cores, 3 replicas' worth) scales it
// up from 1; once the load stops it comes back to 1, after the
// (shortened, 15 s) stabilisation window and not before. moat history
// and moat events show both scales, by the autoscaler; moat scale is
// refused; a deploy keeps the count; no request failed.
func TestAppAutoscale(t *testing.T) {
	c := testcluster.NewCluster(t, 2)
	c.AddNodeConf("n1", "edge=true", "metrics-interval=1s")
	c.AddNodeConf("n2", "metrics-interval=1s")
	m := c.StartMaster("--app-autoscale-interval", "1s", "--app-autoscale-window", "15s")
	c.Enrol(m, "n1", "n2")
	m.ImportProbe(t, "probe:1")
	e := &env{t: t, c: c, m: m}
	r := e.deploy(burnSpec("autoscale: {min: 1, max: 4, cpu: 50%}"))
	e.wait("web", r.Revision)
	ctx := context.Background()

	if _, err := m.Client.Scale(ctx, "web", 3); err == nil || !strings.Contains(err.Error(), "web is autoscaled (1 to 4 replicas)") {
		t.Errorf("moat scale of an autoscaled app: %v", err)
	}
	edge := net.JoinHostPort(e.nodeAddr("n1"), "80")
	stop := burnLoad(edge, "web.test", 15, 20)
	loaded := time.Now()
	up := waitCount(t, m, "web", "under load", 90*time.Second, func(n int) bool { return n >= 3 })
	t.Logf("scaled to %d replicas %s after the load began", up, time.Since(loaded).Round(100*time.Millisecond))
	e.waitReplicas("web", "the new replicas ready", 60*time.Second, func(reps []masterapi.Replica) bool {
		n, _ := ready(reps)
		return n >= up
	})
	// A deploy keeps the count reached (the spec's replicas, left out, would be 1).
	r = e.deploy(burnSpec("autoscale: {min: 1, max: 4, cpu: 50%}"))
	e.wait("web", r.Revision)
	if n := replicaCount(t, m, "web"); n < up {
		t.Errorf("a deploy under load made %d replicas of %d: want the count kept", n, up)
	}
	ok, failed := stop()
	idle := time.Now()
	if failed > 0 {
		t.Errorf("%d of %d requests failed under load", failed, ok+failed)
	}
	// Back to 1, but only once the window has passed since the last busy
	// recommendation.
	waitCount(t, m, "web", "without load", 90*time.Second, func(n int) bool { return n == 1 })
	if took := time.Since(idle); took < 10*time.Second {
		t.Errorf("scaled down %s after the load stopped: before the 15 s window", took)
	}
	t.Logf("back to 1 replica %s after the load stopped", time.Since(idle).Round(100*time.Millisecond))

	revs, err := m.Client.Revisions(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	var causes []string
	for _, r := range revs {
		causes = append(causes, r.Cause)
	}
	all := strings.Join(causes, "\n")
	if !strings.Contains(all, "scale to 2 (cpu 100% of 50%)") && !strings.Contains(all, fmt.Sprintf("scale to %d (cpu", up)) || !strings.Contains(all, "scale to 1 (cpu") {
		t.Errorf("history has no scale up and down by the autoscaler:\n%s", all)
	}
	evs, err := m.Client.Events(ctx, masterapi.EventQuery{App: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var scales []string
	for _, ev := range evs {
		if ev.Kind == masterapi.EventScale {
			scales = append(scales, ev.Message)
		}
	}
	if len(scales) < 2 || !strings.HasSuffix(scales[0], "by autoscaler") || !strings.HasPrefix(scales[len(scales)-1], "scale to 1 (") {
		t.Errorf("scale events %q: want the scale up and the scale down, by the autoscaler", scales)
	}
}
