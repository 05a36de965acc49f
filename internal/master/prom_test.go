package master_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/moatcloud/moat/internal/testcluster"
)

// TestPrometheus scrapes a real master with a cluster and a deployed app,
// on its API and on its unix socket listener: promtool passes the
// exposition, and the nodes', app's and replicas' series are there with
// their labels and plausible values, samples from the nodes included.
func TestPrometheus(t *testing.T) {
	c := testcluster.NewCluster(t, 2)
	sock := filepath.Join(t.TempDir(), "prom", "prometheus.sock")
	m := c.StartMaster("--prometheus-listen", "unix:"+sock)
	var names []string
	for _, n := range c.Nodes {
		names = append(names, n.Name)
		c.AddNodeConf(n.Name, "metrics-interval=1s")
	}
	c.Enrol(m, names...)
	m.ImportProbe(t, "probe:1")
	e := &env{t: t, c: c, m: m}
	// A patient health check: the machine may be busy, and this test is
	// about what the master shows, not how fast replicas answer.
	resp := e.deploy(strings.Replace(spec("web", 2), "interval: 200ms, timeout: 150ms, retries: 2", "interval: 1s, timeout: 900ms, retries: 3", 1))
	if p := e.wait("web", resp.Revision); p.Status != "deployed" {
		t.Fatalf("rollout: %+v", p)
	}
	reps := e.replicas("web")

	api := promClient(m.Socket)
	// Samples arrive within a few node intervals (1 s) and pulls.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(60 * time.Second)
	for {
		text := promGet(t, api, "/v1/prometheus", http.StatusOK)
		fams = promParse(t, text)
		if promHas(fams, "moat_node_cpu_usage_cores", len(names)) && promHas(fams, "moat_replica_memory_bytes", len(reps)) {
			promtool(t, text)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no samples of every node and replica within 60s:\n%s", promGrep(text, "moat_node_cpu_usage_cores", "moat_replica_memory_bytes", "moat_metrics_"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, n := range names {
		l := map[string]string{"node": n, "tenant": "default"}
		promWant(t, fams, "moat_node_up", l, func(v float64) bool { return v == 1 })
		promWant(t, fams, "moat_node_state", promWith(l, "state", "up"), func(v float64) bool { return v == 1 })
		promWant(t, fams, "moat_node_cpu_capacity_cores", l, func(v float64) bool { return v >= 1 })
		promWant(t, fams, "moat_node_memory_capacity_bytes", l, func(v float64) bool { return v > 1<<20 })
		promWant(t, fams, "moat_node_cpu_usage_cores", l, func(v float64) bool { return v >= 0 && v < 1024 })
		promWant(t, fams, "moat_node_memory_used_bytes", l, func(v float64) bool { return v > 1<<20 })
		promWant(t, fams, "moat_node_sample_timestamp_seconds", l, func(v float64) bool {
			return time.Since(time.Unix(int64(v), 0)) < time.Minute
		})
		promWant(t, fams, "moat_ssh_connects_total", map[string]string{"node": n}, func(v float64) bool { return v >= 1 })
		promWant(t, fams, "moat_metrics_pull_bytes_total", map[string]string{"node": n}, func(v float64) bool { return v > 0 })
		promWant(t, fams, "moat_metrics_pull_lag_seconds", map[string]string{"node": n}, func(v float64) bool { return v >= 0 && v < 60 })
		promWant(t, fams, "moat_metrics_pull_records_total", map[string]string{"node": n, "outcome": "ingested"}, func(v float64) bool { return v >= 1 })
	}
	app := map[string]string{"app": "web", "tenant": "default"}
	promWant(t, fams, "moat_app_replicas_desired", app, func(v float64) bool { return v == 2 })
	promWant(t, fams, "moat_app_replicas_ready", app, func(v float64) bool { return v == 2 })
	promWant(t, fams, "moat_app_revision", app, func(v float64) bool { return v == float64(resp.Revision) })
	promWant(t, fams, "moat_app_status", promWith(app, "status", "deployed"), func(v float64) bool { return v == 1 })
	for _, r := range reps {
		l := map[string]string{"replica": r.ID, "app": "web", "tenant": "default", "node": r.Node}
		promWant(t, fams, "moat_replica_state", promWith(l, "state", "ready"), func(v float64) bool { return v == 1 })
		promWant(t, fams, "moat_replica_health", l, func(v float64) bool { return v == 1 })
		promWant(t, fams, "moat_replica_restarts_total", l, func(v float64) bool { return v == 0 })
		// The probe is a small Go program under a 32 MiB limit.
		promWant(t, fams, "moat_replica_memory_bytes", l, func(v float64) bool { return v > 100<<10 && v <= 32<<20 })
		promWant(t, fams, "moat_replica_memory_limit_bytes", l, func(v float64) bool { return v == 32<<20 })
		promWant(t, fams, "moat_replica_pids", l, func(v float64) bool { return v >= 1 })
	}
	promWant(t, fams, "moat_ssh_connections", map[string]string{"state": "up"}, func(v float64) bool { return v == 2 })
	promWant(t, fams, "moat_master_state_bytes", map[string]string{"file": "master.db"}, func(v float64) bool { return v > 0 })
	promWant(t, fams, "moat_metrics_ingested_groups_total", map[string]string{"outcome": "taken"}, func(v float64) bool { return v >= 4 })
	promWant(t, fams, "moat_metrics_archives", map[string]string{}, func(v float64) bool { return v >= 4 })
	if h := promHistogram(fams, "moat_reconcile_duration_seconds", nil); h == nil || h.GetSampleCount() == 0 {
		t.Errorf("no reconcile passes in moat_reconcile_duration_seconds: %v", h)
	}
	if h := promHistogram(fams, "moat_deploy_duration_seconds", map[string]string{"outcome": "deployed"}); h == nil || h.GetSampleCount() != 1 || h.GetSampleSum() <= 0 || h.GetSampleSum() > 60 {
		t.Errorf("moat_deploy_duration_seconds{outcome=deployed}: %v; want the one rollout, under a minute", h)
	}
	for _, f := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[f] == nil {
			t.Errorf("no %s", f)
		}
	}

	// The unix socket: mode 0660, /metrics only.
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("prometheus socket %s: %v %v; want a socket of mode 0660", sock, fi, err)
	}
	ps := promClient(sock)
	text := promGet(t, ps, "/metrics", http.StatusOK)
	promtool(t, text)
	fams = promParse(t, text)
	promWant(t, fams, "moat_app_replicas_ready", app, func(v float64) bool { return v == 2 })
	for _, path := range []string{"/v1/prometheus", "/v1/apps", "/v1/nodes", "/debug/pprof/", "/"} {
		promGet(t, ps, path, http.StatusNotFound)
	}
	if code := promDo(t, ps, "POST", "/metrics", "").code; code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics on the socket: %d; want 405", code)
	}
}

// TestPrometheusListenRefused: a master told to serve Prometheus on an
// address that is not loopback refuses to start, and says why.
func TestPrometheusListenRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "master")
	moat := testcluster.Moat(t)
	if out, err := exec.Command(moat, "init", "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("moat init: %v\n%s", err, out)
	}
	for _, addr := range []string{"0.0.0.0:9464", ":9464", "10.1.2.3:9464", "[::]:9464", "localhost:9464", "unix:relative.sock"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, moat, "master", "--dir", dir, "--socket", filepath.Join(dir, "m.sock"), "--api-socket", "", "--prometheus-listen", addr)
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut || !strings.Contains(string(out), "prometheus-listen") || !strings.Contains(string(out), "loopback") && strings.Contains(addr, ":9464") {
			t.Errorf("moat master --prometheus-listen %s: %v %s; want it refused, naming the setting", addr, err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "m.sock")); err == nil {
			t.Errorf("--prometheus-listen %s: the master served its API before refusing", addr)
		}
	}
}

func promClient(sock string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

type promReply struct {
	code int
	body string
}

func promDo(t *testing.T, c *http.Client, method, path, body string) promReply {
	t.Helper()
	req, err := http.NewRequest(method, "http://moat"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return promReply{resp.StatusCode, string(b)}
}

func promGet(t *testing.T, c *http.Client, path string, code int) string {
	t.Helper()
	r := promDo(t, c, "GET", path, "")
	if r.code != code {
		t.Fatalf("GET %s: %d %.300s; want %d", path, r.code, r.body, code)
	}
	return r.body
}

func promParse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	return fams
}

// promtool checks the exposition with promtool check metrics (Debian's
// prometheus package; scripts/test installs it), lint included.
func promtool(t *testing.T, text string) {
	t.Helper()
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
}

// series finds the series of family name with exactly labels.
func promSeries(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		for _, l := range m.Label {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		return m
	}
	return nil
}

func promHistogram(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Histogram {
	if m := promSeries(fams, name, labels); m != nil {
		return m.Histogram
	}
	return nil
}

// has says whether family name has at least n series.
func promHas(fams map[string]*dto.MetricFamily, name string, n int) bool {
	return fams[name] != nil && len(fams[name].Metric) >= n
}

func promWant(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string, ok func(float64) bool) {
	t.Helper()
	m := promSeries(fams, name, labels)
	if m == nil {
		t.Errorf("no %s%v", name, labels)
		return
	}
	v := m.GetGauge().GetValue()
	if m.Counter != nil {
		v = m.Counter.GetValue()
	}
	if !ok(v) {
		t.Errorf("%s%v = %v: implausible", name, labels, v)
	}
}

func promWith(l map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range l {
		out[a] = b
	}
	return out
}

// grep is text's lines that begin with one of prefixes.
func promGrep(text string, prefixes ...string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				b.WriteString(line + "\n")
				break
			}
		}
	}
	return b.String()
}
