package master_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkMasterDeploy10k: the master holding 1,000 simulated nodes
// (scale_node_test.go) deploys 10,000 replicas with a health check: ten
// apps of 1,000, since an app has at most spec.MaxReplicas (1,000). Each
// app spreads one replica per node, ten per node. The image is in the
// master's store, signed; nodes have every blob, so the master has them
// pull it and nothing is uploaded.
//
// Measured: from the first deploy request to all 10,000 ready as the
// master reports them (the apps' Ready counts), and to every revision
// deployed; the master's CPU (cores) and peak RSS meanwhile, and the
// simulated nodes' CPU (this process: on a small machine the two share the
// cores, and the nodes' SSH and HTTP/2 are not free); then the master's
// CPU and RSS in steady state over 60 s. From the master's debug log: the
// time it took to place the replicas, and how long create operations
// took. Goals: ≤ 10 s to all ready, ≤ 0.5 core in steady state.
//
// MOAT_BENCH_PROFILE=dir saves CPU profiles of the master during the
// deploy (deploy-cpu-NN.pprof, 2 s each: go tool pprof merges them) and in
// steady state (steady-cpu.pprof), its heap and goroutines after, and its
// log (deploy-master.log).
//
//	go test -run XXX -bench MasterDeploy10k -benchtime 1x -timeout 30m ./internal/master
func BenchmarkMasterDeploy10k(b *testing.B) {
	const nodes, apps, perApp = 1000, 10, 1000
	testcluster.RequireRoot(b)
	fake, m, allUp := startSimCluster(b, nodes)
	ctx := context.Background()
	m.ImportProbe(b, "probe:1")
	waitDescribed(b, m, nodes)
	time.Sleep(10 * time.Second) // settle: every node has its stream and lease
	out := os.Getenv("MOAT_BENCH_PROFILE")
	b.ResetTimer()
	pid := m.Pid()
	cpu0, self0 := cpuTicks(b, pid), cpuTicks(b, os.Getpid())
	t0 := time.Now()
	stopProfiles := profileChunks(m, out, "deploy-cpu")
	for i := range apps {
		if _, err := m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: simSpec(simApp(i), perApp)}); err != nil {
			b.Fatal(err)
		}
	}
	deploy := waitAllReady(b, m, apps*perApp, t0)
	deployCores := float64(cpuTicks(b, pid)-cpu0) / 100 / deploy.ready.Seconds()
	simCores := float64(cpuTicks(b, os.Getpid())-self0) / 100 / deploy.ready.Seconds()
	stopProfiles()
	deployed := waitAllDeployed(b, m, apps, t0)

	time.Sleep(5 * time.Second) // settle: the rollouts' last steps, nodes describing their images
	start := time.Now()
	steadyCores := steadyCPU(b, m, out)
	b.StopTimer()
	b.Logf("deploy %s, all ready %s, steady state %s to %s", t0.Format(time.RFC3339Nano),
		t0.Add(deploy.ready).Format(time.RFC3339Nano), start.Format(time.RFC3339Nano), time.Now().Format(time.RFC3339Nano))

	st := &fake.stats
	b.Logf("simulated nodes: %d creates, %d pulls, %d event streams opened", st.creates.Load(), st.pulls.Load(), st.streams.Load())
	if calls := st.unexpectedCalls(); len(calls) > 0 {
		b.Errorf("the master made calls the simulated nodes do not serve: %s", strings.Join(calls[:min(len(calls), 10)], ", "))
	}

	placed, ops := fromMasterLog(m.Log())
	b.ReportMetric(deploy.ready.Seconds(), "all-ready-s")
	b.ReportMetric(deployed.Seconds(), "all-deployed-s")
	b.ReportMetric(deployCores, "deploy-master-cores")
	b.ReportMetric(deploy.peakRSS, "deploy-master-rss-MiB")
	b.ReportMetric(simCores, "deploy-sim-cores")
	b.ReportMetric(steadyCores, "steady-master-cores")
	b.ReportMetric(rssMiB(b, pid), "steady-master-rss-MiB")
	b.ReportMetric(placed.Seconds(), "place-s")
	if len(ops) > 0 {
		slices.Sort(ops)
		b.ReportMetric(float64(ops[len(ops)/2].Milliseconds()), "create-op-p50-ms")
		b.ReportMetric(float64(ops[len(ops)-1].Milliseconds()), "create-op-max-ms")
	}
	b.ReportMetric(allUp.Seconds(), "all-up-s")
	b.ReportMetric(0, "ns/op")
	if out != "" {
		for _, p := range []string{"heap", "goroutine"} {
			save(m.Client.HTTP, "http://master/debug/pprof/"+p, filepath.Join(out, "deploy-"+p+".pprof"))
		}
		os.WriteFile(filepath.Join(out, "deploy-master.log"), []byte(m.Log()), 0o644)
	}
}

// steadyCPU is the master's CPU (cores) over the next 60 s, profiled
// into dir/steady-cpu.pprof if dir is not "".
func steadyCPU(b *testing.B, m *testcluster.Master, dir string) float64 {
	cpu0, start := cpuTicks(b, m.Pid()), time.Now()
	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		if dir != "" {
			save(m.Client.HTTP, "http://master/debug/pprof/profile?seconds=60", filepath.Join(dir, "steady-cpu.pprof"))
		}
	}()
	time.Sleep(60 * time.Second)
	<-profiled
	return float64(cpuTicks(b, m.Pid())-cpu0) / 100 / time.Since(start).Seconds()
}

func simApp(i int) string { return fmt.Sprintf("sim%02d", i) }

// simSpec is an app with a health check, one replica per node (spread),
// and a deadline long enough that a slow master is measured, not rolled
// back.
func simSpec(name string, replicas int) string {
	return fmt.Sprintf(`name: %s
image: probe:1
replicas: %d
args: [serve, ":8080"]
resources: {cpu: 100m, memory: 64Mi}
ports: [{name: http, port: 8080}]
health: {http: /, port: http, interval: 2s}
update: {deadline: 10m}
`, name, replicas)
}

// waitDescribed waits until every node has told the master its capacity,
// which the scheduler needs.
func waitDescribed(b testing.TB, m *testcluster.Master, n int) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ns, err := m.Client.Nodes(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		described := 0
		for _, node := range ns {
			if node.State == "up" && node.Info.CPUs > 0 {
				described++
			}
		}
		if described == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d nodes described themselves within 2 minutes", described, n)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// deployTimes is what waitAllReady saw.
type deployTimes struct {
	ready   time.Duration // from t0 to all ready
	peakRSS float64       // the master's, MiB
}

// waitAllReady polls the master (five times a second, each a look at
// the whole world) until want replicas are ready, and samples its RSS.
func waitAllReady(b *testing.B, m *testcluster.Master, want int, t0 time.Time) deployTimes {
	var d deployTimes
	for {
		d.peakRSS = max(d.peakRSS, rssMiB(b, m.Pid()))
		as, err := m.Client.Apps(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		ready := 0
		for _, a := range as {
			ready += a.Ready
			if a.Status == "failed" {
				b.Fatalf("%s revision %d failed: %s", a.Name, a.Revision, a.Message)
			}
		}
		if ready >= want {
			d.ready = time.Since(t0)
			return d
		}
		if time.Since(t0) > 10*time.Minute {
			b.Fatalf("%d of %d replicas ready after 10 minutes", ready, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitAllDeployed waits until every app's target revision is deployed.
func waitAllDeployed(b *testing.B, m *testcluster.Master, apps int, t0 time.Time) time.Duration {
	for {
		as, err := m.Client.Apps(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		deployed := 0
		for _, a := range as {
			if a.Status == "deployed" {
				deployed++
			}
		}
		if deployed == apps {
			return time.Since(t0)
		}
		if time.Since(t0) > 10*time.Minute {
			b.Fatalf("%d of %d apps deployed after 10 minutes", deployed, apps)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// profileChunks saves the master's CPU profile, 2 s at a time, as
// dir/name-NN.pprof until the returned function is called (which waits
// for the last one). Nothing when dir is "".
func profileChunks(m *testcluster.Master, dir, name string) func() {
	if dir == "" {
		return func() {}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			save(m.Client.HTTP, "http://master/debug/pprof/profile?seconds=2", filepath.Join(dir, fmt.Sprintf("%s-%02d.pprof", name, i)))
		}
	}()
	return func() { close(stop); <-done }
}

var (
	placedLine = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg="replicas? placed"`)
	createOp   = regexp.MustCompile(`msg="operation done" .* op=create took=(\S+)`)
)

// fromMasterLog reads, from the master's log, the time from its first
// replica placed to its last, and how long each create operation took
// (image check, pull, create: the master logs each at debug level).
func fromMasterLog(log string) (placed time.Duration, ops []time.Duration) {
	if ts := placedLine.FindAllStringSubmatch(log, -1); len(ts) > 0 {
		first, _ := time.Parse(time.RFC3339Nano, ts[0][1])
		last, _ := time.Parse(time.RFC3339Nano, ts[len(ts)-1][1])
		placed = last.Sub(first)
	}
	for _, line := range strings.Split(log, "\n") {
		if sm := createOp.FindStringSubmatch(line); sm != nil {
			if d, err := time.ParseDuration(sm[1]); err == nil {
				ops = append(ops, d)
			}
		}
	}
	return placed, ops
}
