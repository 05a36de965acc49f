package master_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// simMetrics is a simulated node's metrics ring, as GET /v1/metrics
// answers it: record k (from 1) is the sample taken at start+(k-1)·interval
// of the node and the containers it runs, made when asked for. Until set,
// the ring is empty: a request is held for its wait, then answered with
// no records, as an idle node's is.
type simMetrics struct {
	mu       sync.Mutex
	start    time.Time
	interval time.Duration
	evil     []string      // a hostile node: these replicas (another node's) are what it names, among garbage
	changed  chan struct{} // closed when set
	bytes    atomic.Int64  // answer bytes
	pages    atomic.Int64  // answers with records
}

// setMetrics has the node sample every interval from start (in the past:
// records it holds already, as after an outage).
func (n *simNode) setMetrics(start time.Time, interval time.Duration, evil []string) {
	m := &n.metrics
	m.mu.Lock()
	m.start, m.interval, m.evil = start, interval, evil
	if m.changed != nil {
		close(m.changed)
	}
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

func (m *simMetrics) get() (time.Time, time.Duration, []string, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.changed == nil {
		m.changed = make(chan struct{})
	}
	return m.start, m.interval, m.evil, m.changed
}

// handleMetrics answers GET /v1/metrics?after=&max=&wait= as the node
// daemon does (internal/node/metrics.go).
func (n *simNode) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	max, err := strconv.Atoi(q.Get("max"))
	if err != nil || max < 1 || max > nodeapi.MaxMetricsPage {
		max = nodeapi.MaxMetricsPage
	}
	wait, _ := time.ParseDuration(q.Get("wait"))
	deadline := time.Now().Add(min(wait, nodeapi.MaxMetricsWait))
	for {
		start, interval, evil, changed := n.metrics.get()
		now := time.Now()
		var newest uint64
		if interval > 0 && !now.Before(start) {
			newest = 1 + uint64(now.Sub(start)/interval)
		}
		page := nodeapi.MetricsPage{Newest: newest, Interval: nodeapi.Duration(interval)}
		if newest > 0 {
			page.Oldest = 1
		}
		if after > newest && newest > 0 {
			page.Gap, after = true, 0
		}
		if after < newest || !now.Before(deadline) {
			for s := after + 1; s <= newest && len(page.Raw) < max; s++ {
				page.Raw = append(page.Raw, nodeapi.RawRecord{Seq: s, Data: n.simRecord(s, start.Add(time.Duration(s-1)*interval), evil)})
			}
			b, _ := json.Marshal(page)
			n.metrics.bytes.Add(int64(len(b)))
			if len(page.Raw) > 0 {
				n.metrics.pages.Add(1)
			}
			w.Header().Set("Content-Type", "application/json")
			_, err := w.Write(b)
			return err
		}
		next := deadline
		if interval > 0 {
			if t := start.Add(time.Duration(newest) * interval); t.Before(next) {
				next = t
			}
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case <-timer.C:
		case <-changed:
		case <-r.Context().Done():
			timer.Stop()
			return nil
		}
		timer.Stop()
	}
}

// simRecord is record seq, sampled at t: the node and its running
// containers, with plausible values. A hostile node's records are, in
// turn, garbage, a sample naming another node's replicas (with values no
// honest sample has: 99 cores), a sample an hour in the future, and a
// sample of its own.
func (n *simNode) simRecord(seq uint64, t time.Time, evil []string) []byte {
	cpu := 0.05 + float64(hash(n.name, seq)%100)/1000
	groups := []nodeapi.MetricsGroup{{Kind: nodeapi.GroupNode, Name: "node", Values: []float64{
		cpu, 0.3, 1.5e9, 4 << 30, 20e9, 80e9, 1e5, 2e5, 3e4, 2e4, 10}}}
	var ids []string
	for _, c := range n.list() {
		if c.State == nodeapi.StateRunning {
			ids = append(ids, c.ID)
		}
	}
	if len(evil) > 0 {
		switch seq % 4 {
		case 0:
			return []byte(fmt.Sprintf("garbage %d \x00\xff", seq))
		case 1:
			groups[0].Values[0], ids = 99, evil
		case 2:
			t = t.Add(time.Hour)
		}
	}
	for _, id := range ids {
		c := 0.01 + float64(hash(id, seq)%50)/1000
		if len(evil) > 0 && seq%4 == 1 {
			c = 99
		}
		groups = append(groups, nodeapi.MetricsGroup{Kind: nodeapi.GroupContainer, Name: id, Values: []float64{
			c, 30e6, 64 << 20, 0, 12, 0, 1e3, 2e3, 1}})
	}
	recs, err := nodeapi.EncodeMetrics(t, groups, 4072)
	if err != nil || len(recs) == 0 {
		panic(fmt.Sprintf("simulated record: %v", err))
	}
	return recs[0] // the first slot's worth (a real node appends each; enough here)
}

func hash(s string, seq uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64() ^ seq*0x9e3779b97f4a7c15
}

// metricsBytes sums what the simulated nodes answered to GET /v1/metrics.
func (f *fakeNodes) metricsBytes() (bytes, pages int64) {
	for _, n := range f.nodes {
		bytes += n.metrics.bytes.Load()
		pages += n.metrics.pages.Load()
	}
	return bytes, pages
}

// cursors reads every stored metrics cursor from the master's database.
func cursors(tb testing.TB, m *testcluster.Master) map[string]uint64 {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(m.Dir, "master.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT node, seq FROM metrics_cursors`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var node string
		var seq int64
		if err := rows.Scan(&node, &seq); err != nil {
			tb.Fatal(err)
		}
		out[node] = uint64(seq)
	}
	return out
}

// waitCursors polls until every node's cursor is at least want's.
func waitCursors(tb testing.TB, m *testcluster.Master, want map[string]uint64, within time.Duration) time.Duration {
	tb.Helper()
	t0 := time.Now()
	for {
		got := cursors(tb, m)
		behind := ""
		for n, seq := range want {
			if got[n] < seq {
				behind = fmt.Sprintf("%s at %d of %d", n, got[n], seq)
				break
			}
		}
		if behind == "" {
			return time.Since(t0)
		}
		if time.Since(t0) > within {
			tb.Fatalf("cursors not caught up within %s: %s", within, behind)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deploySim deploys an app of n replicas on the simulated nodes and waits
// until all are ready.
func deploySim(tb testing.TB, m *testcluster.Master, app string, n int) {
	tb.Helper()
	if _, err := m.Client.Deploy(context.Background(), masterapi.DeployRequest{Spec: simSpec(app, n)}); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		apps, err := m.Client.Apps(context.Background())
		ready := 0
		for _, a := range apps {
			if a.Name == app {
				ready = a.Ready
			}
		}
		if err == nil && ready == n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: %d of %d ready after 5 minutes (%v)", app, ready, n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMetricsHostileNode: a simulated node whose ring holds garbage,
// samples naming another node's replicas and samples from the future,
// among its own, cannot stop the master pulling it nor write the other
// node's series: the master's cursor follows its ring to the end, the
// other node's and its replica's histories hold only their own values.
func TestMetricsHostileNode(t *testing.T) {
	testcluster.RequireRoot(t)
	fake, m, _ := startSimCluster(t, 2)
	m.ImportProbe(t, "probe:1")
	waitDescribed(t, m, 2)
	deploySim(t, m, "web", 2)
	reps, err := m.Client.Replicas(context.Background(), "web")
	if err != nil || len(reps) != 2 || reps[0].Node == reps[1].Node {
		t.Fatalf("web's replicas: %+v, %v; want one on each node", reps, err)
	}
	var victim []string
	for _, r := range reps {
		if r.Node == simName(0) {
			victim = append(victim, r.ID)
		}
	}
	start := time.Now().Add(-30 * time.Second) // 31 records held already
	fake.nodes[0].setMetrics(start, time.Second, nil)
	fake.nodes[1].setMetrics(start, time.Second, victim)
	want := map[string]uint64{simName(0): 40, simName(1): 40}
	waitCursors(t, m, want, 60*time.Second)

	since := start.Add(-time.Minute)
	check := func(kind, name string) float64 {
		t.Helper()
		h, err := m.Client.MetricsHistory(context.Background(), masterapi.MetricsQuery{Kind: kind, Name: name, Since: since, Step: 10 * time.Second})
		if err != nil {
			t.Fatalf("%s %s's history: %v", kind, name, err)
		}
		most, samples := 0.0, 0
		for _, v := range h.Max[0] { // cpu
			if f := float64(v); !math.IsNaN(f) {
				most, samples = max(most, f), samples+1
			}
		}
		if samples < 3 {
			t.Errorf("%s %s: %d steps sampled; want its samples kept", kind, name, samples)
		}
		return most
	}
	if cpu := check(masterapi.MetricsNode, simName(0)); cpu > 1 {
		t.Errorf("node %s's cpu reached %g: the hostile node wrote its series", simName(0), cpu)
	}
	if cpu := check(masterapi.MetricsReplica, victim[0]); cpu > 1 {
		t.Errorf("replica %s's cpu reached %g: the hostile node wrote its series", victim[0], cpu)
	}
	check(masterapi.MetricsNode, simName(1)) // its own samples are kept
	if !strings.Contains(m.Log(), "metrics pull: records skipped") {
		t.Errorf("the master did not log the records it skipped")
	}
}

// archiveFiles are the master's archive files: apparent and allocated
// bytes of each.
type archiveFiles map[string][2]int64

func metricsDisk(m *testcluster.Master) archiveFiles {
	out := archiveFiles{}
	dir := filepath.Join(m.Dir, "metrics")
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			rel, _ := filepath.Rel(dir, p)
			out[rel] = [2]int64{st.Size, st.Blocks * 512}
		}
		return nil
	})
	return out
}

// sum is the apparent and allocated bytes of the files.
func (a archiveFiles) sum() (apparent, allocated int64) {
	for _, v := range a {
		apparent += v[0]
		allocated += v[1]
	}
	return apparent, allocated
}

// grown names the files bigger in b than in a (their apparent size).
func (a archiveFiles) grown(b archiveFiles) []string {
	var out []string
	for p, v := range a {
		if w, ok := b[p]; ok && w[0] != v[0] {
			out = append(out, fmt.Sprintf("%s %d→%d", p, v[0], w[0]))
		}
	}
	return out
}

// perKind is the apparent bytes of one file of each kind (its directory).
func (a archiveFiles) perKind() map[string]int64 {
	out := map[string]int64{}
	for p, v := range a {
		out[filepath.Dir(p)] = v[0]
	}
	return out
}

// BenchmarkMasterMetricsIngest: the master holding 1,000 simulated nodes
// (scale_node_test.go) running 10,000 replicas, ten per node, pulls each
// node's metrics ring: a sample of the node and its ten containers every
// 10 s per node (the nodes' clocks spread over the interval). Measured in
// the same run: the master's CPU over 60 s with every ring idle (each
// node holding the master's long poll), then over 60 s with samples
// coming in; the extra is what ingesting costs (goal ≤ 0.1 core). The
// idle master reconciling 10,000 replicas varies by more than that from
// one minute to the next on a busy machine, so MOAT_BENCH_PROFILE=dir
// also saves a CPU profile of the ingesting window (ingest-cpu.pprof):
// the pull's own share is puller.run's, the archive's under it. Bytes on
// disk: no archive file changes size while samples come in (fixed per
// series; new files only for new replicas).
//
//	go test -run XXX -bench MasterMetricsIngest -benchtime 1x -timeout 30m ./internal/master
func BenchmarkMasterMetricsIngest(b *testing.B) {
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
	time.Sleep(10 * time.Second) // settle
	b.ResetTimer()
	pid := m.Pid()
	window := func() float64 {
		c0, t0 := cpuTicks(b, pid), time.Now()
		time.Sleep(60 * time.Second)
		return float64(cpuTicks(b, pid)-c0) / 100 / time.Since(t0).Seconds()
	}
	idle := window()
	now := time.Now()
	for i, n := range fake.nodes {
		n.setMetrics(now.Add(time.Duration(i)*10*time.Second/nodes), 10*time.Second, nil)
	}
	// Every series made: each node's first samples ingested (making a
	// series' files is once, not what ingesting costs).
	first := map[string]uint64{}
	for i := range nodes {
		first[simName(i)] = 2
	}
	made := waitCursors(b, m, first, 5*time.Minute)
	b.Logf("every node's first two samples ingested %s after the rings started", made.Round(time.Second))
	time.Sleep(10 * time.Second)
	disk0 := metricsDisk(m)
	bytes0, pages0 := fake.metricsBytes()
	if out := os.Getenv("MOAT_BENCH_PROFILE"); out != "" {
		go save(m.Client.HTTP, "http://master/debug/pprof/profile?seconds=50", filepath.Join(out, "ingest-cpu.pprof"))
	}
	busy := window()
	disk1 := metricsDisk(m)
	bytes1, pages1 := fake.metricsBytes()
	b.StopTimer()
	b.Logf("master CPU: %.4f cores idle, %.4f ingesting; %.0f bytes/s and %.1f pages/s pulled", idle, busy, float64(bytes1-bytes0)/60, float64(pages1-pages0)/60)
	b.ReportMetric(idle, "idle-cores")
	b.ReportMetric(busy, "ingest-cores")
	b.ReportMetric(busy-idle, "extra-cores")
	app0, alloc0 := disk0.sum()
	app1, alloc1 := disk1.sum()
	b.ReportMetric(float64(len(disk1)), "archive-files")
	b.ReportMetric(float64(alloc1-alloc0)/60, "allocated-bytes/s")
	b.ReportMetric(float64(bytes1-bytes0)/60, "pulled-bytes/s")
	b.ReportMetric(float64(pages1-pages0)/60, "pages/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("archive: %d files, %d bytes apparent (%d at the window's start, %d files), %d allocated (%d at start); bytes per series by kind %v",
		len(disk1), app1, app0, len(disk0), alloc1, alloc0, disk1.perKind())
	if g := disk0.grown(disk1); len(g) > 0 {
		b.Errorf("%d archive files changed size while samples came in (not fixed per series): %s", len(g), strings.Join(g[:min(len(g), 5)], ", "))
	}
}

// BenchmarkMasterMetricsBackfill: 20 simulated nodes, ten replicas each,
// whose rings hold an hour the master has not pulled (360 samples at
// 10 s, as after an hour's outage): the time until the master's cursor of
// every one has reached the newest record, and the bytes pulled.
//
//	go test -run XXX -bench MasterMetricsBackfill -benchtime 1x ./internal/master
func BenchmarkMasterMetricsBackfill(b *testing.B) {
	const nodes = 20
	testcluster.RequireRoot(b)
	fake, m, _ := startSimCluster(b, nodes)
	m.ImportProbe(b, "probe:1")
	waitDescribed(b, m, nodes)
	deploySim(b, m, "web", nodes*10)
	b.ResetTimer()
	start := time.Now().Add(-time.Hour)
	for _, n := range fake.nodes {
		n.setMetrics(start, 10*time.Second, nil)
	}
	want := map[string]uint64{}
	for i := range nodes {
		want[simName(i)] = 361
	}
	took := waitCursors(b, m, want, 5*time.Minute)
	b.StopTimer()
	bytes, pages := fake.metricsBytes()
	b.ReportMetric(took.Seconds(), "backfill-s")
	b.ReportMetric(float64(bytes)/nodes, "bytes/node")
	b.ReportMetric(float64(pages)/nodes, "pages/node")
	b.ReportMetric(float64(nodes*361)/took.Seconds(), "records/s")
	b.ReportMetric(0, "ns/op")
	if v := os.Getenv("MOAT_BENCH_LOG"); v != "" {
		os.WriteFile(v, []byte(m.Log()), 0o600)
	}
}
