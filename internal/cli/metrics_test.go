package cli

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/metrics/archive"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/wire"
)

// metricsMaster answers on a socket as the master does, from a real
// archive store holding ten minutes of node n1 and replicas web-aaaaaa
// and web-bbbbbb, sampled every 10 s until now.
func metricsMaster(t *testing.T) time.Time {
	t.Helper()
	now := time.Now().UTC()
	st, err := archive.Open(t.TempDir(), archive.Options{Now: func() time.Time { return now }, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i := 60; i >= 0; i-- {
		nv := []float64{0.5, 0.1, 512 << 20, 2 << 30, 25 << 30, 100 << 30, 0, 4096, 20 << 10, 10 << 10, 2}
		rec := nodeapi.MetricsRecord{Time: now.Add(-time.Duration(i) * 10 * time.Second), Groups: []nodeapi.MetricsGroup{{Kind: nodeapi.GroupNode, Name: "n1", Values: nv}}}
		for j, id := range []string{"web-aaaaaa", "web-bbbbbb"} {
			cv := []float64{0.25, float64(64<<20) * float64(j+1), 0, 0, 3, float64(j), 0, 0, 1}
			rec.Groups = append(rec.Groups, nodeapi.MetricsGroup{Kind: nodeapi.GroupContainer, Name: id, Values: cv})
		}
		if err := st.Ingest("n1", rec); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/metrics/latest", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, 200, st.Latest())
	})
	mux.HandleFunc("GET /v1/metrics/{kind}/{name}", func(w http.ResponseWriter, r *http.Request) {
		q := masterapi.MetricsQuery{Kind: r.PathValue("kind"), Name: r.PathValue("name")}
		q.Since, _ = time.Parse(time.RFC3339, r.URL.Query().Get("since"))
		q.Until, _ = time.Parse(time.RFC3339, r.URL.Query().Get("until"))
		q.Step, _ = time.ParseDuration(r.URL.Query().Get("step"))
		q.Points, _ = strconv.Atoi(r.URL.Query().Get("points"))
		m, err := st.History(q)
		if err != nil {
			wire.WriteError(w, err)
			return
		}
		wire.WriteJSON(w, 200, m)
	})
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, 200, []masterapi.Node{{Name: "n1", State: "up", Info: nodeapi.NodeInfo{CPUs: 4}}, {Name: "n2", State: "down"}})
	})
	mux.HandleFunc("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, 200, []masterapi.App{{Name: "web", Ready: 2, Desired: 2}, {Name: "idle", Desired: 0}})
	})
	socket := filepath.Join(t.TempDir(), "master.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("MOAT_MASTER_SOCKET", socket)
	t.Setenv("MOAT_MASTER", "local")
	return now
}

// moatRun runs the command line in-process: stdout, how many writes it
// took, stderr, exit status.
func moatRun(t *testing.T, args ...string) (string, int, string, int) {
	t.Helper()
	var stdout, stderr writes
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), stdout.calls, stderr.String(), code
}

func TestMetricsCommand(t *testing.T) {
	metricsMaster(t)
	out, writes, errOut, code := moatRun(t, "metrics", "node", "n1", "--since", "5m")
	if code != 0 || writes != 1 {
		t.Fatalf("exit %d, %d writes, stderr %s", code, writes, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "node n1, step 10s") || !strings.HasPrefix(lines[1], "TIME") || !strings.Contains(lines[1], "MEM_USED") {
		t.Fatalf("head:\n%s", out)
	}
	if len(lines) < 30 || len(lines) > 33 {
		t.Errorf("%d lines for 5 minutes at 10 s:\n%s", len(lines), out)
	}
	last := strings.Fields(lines[len(lines)-1])
	if want := []string{"0.50", "0.1", "512MiB", "2GiB", "25GiB", "100GiB", "0B/s", "4KiB/s", "20KiB/s", "10KiB/s", "2"}; strings.Join(last[2:], " ") != strings.Join(want, " ") {
		t.Errorf("last row %v, want %v", last[2:], want)
	}

	out, _, errOut, code = moatRun(t, "metrics", "app", "web", "--since", "10m", "--step", "1m", "--json")
	var m masterapi.Metrics
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
		t.Fatalf("--json: exit %d, %s %s", code, out, errOut)
	}
	if m.Step != 60 || m.Fields[len(m.Fields)-1].Name != "replicas" {
		t.Fatalf("app at 1m: step %v fields %v", m.Step, m.Fields)
	}
	i := len(m.Times) - 2 // the last whole minute
	if mem := m.Avg[1][i]; math.Abs(float64(mem)-96<<20) > 1 || m.Max[1][i] != 128<<20 || m.Min[1][i] != 64<<20 || m.Avg[9][i] != 2 {
		t.Errorf("app minute %d: mem avg %v min %v max %v replicas %v; want 96MiB, 64MiB, 128MiB, 2", i, m.Avg[1][i], m.Min[1][i], m.Max[1][i], m.Avg[9][i])
	}

	for _, args := range [][]string{
		{"metrics", "disk", "n1"},
		{"metrics", "node"},
		{"metrics", "node", "n1", "--since", "yesterday"},
		{"metrics", "node", "n1", "--step", "fast"},
	} {
		if out, _, errOut, code := moatRun(t, args...); code != 2 || out != "" || !strings.Contains(errOut, "hint: usage: moat metrics") {
			t.Errorf("moat %v: exit %d, stdout %q, stderr %q; want 2 and the usage", args, code, out, errOut)
		}
	}
	if _, _, errOut, code := moatRun(t, "metrics", "node", "nosuch"); code != 3 {
		t.Errorf("unknown node: exit %d %s, want 3", code, errOut)
	}
}

func TestTopOnce(t *testing.T) {
	metricsMaster(t)
	out, writes, errOut, code := moatRun(t, "top")
	if code != 0 || writes != 1 {
		t.Fatalf("exit %d, %d writes, stderr %s", code, writes, errOut)
	}
	for _, want := range []string{"NODE", "0.50/4", "512MiB/2GiB", "25%", "20KiB/s", "APP", "web", "2/2", "192MiB", "idle"} {
		if !strings.Contains(out, want) {
			t.Errorf("top lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("top redraws when stdout is not a terminal:\n%q", out)
	}
	out, _, _, code = moatRun(t, "top", "--json")
	var v topData
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("--json: exit %d %s", code, out)
	}
	if len(v.Nodes) != 2 || v.Nodes[0].CPU != 0.5 || v.Nodes[1].Name != "n2" || len(v.Apps) != 2 || v.Apps[1].Sampled != 2 || v.Apps[1].Mem != 192<<20 || v.Apps[1].Restarts != 1 {
		t.Errorf("top --json: %+v", v)
	}
}

func TestHumanValue(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		unit string
		want string
	}{
		{math.NaN(), "bytes", "-"},
		{1.234, "cores", "1.23"},
		{512, "bytes", "512B"},
		{1536, "bytes", "1.5KiB"},
		{300 << 20, "bytes", "300MiB"},
		{12.5 * (1 << 30), "bytes", "12.5GiB"},
		{2048, "bytes/s", "2KiB/s"},
		{3, "1/s", "3/s"},
		{0.0123, "s", "12.3ms"},
		{3.5, "s", "3500ms"},
		{600, "s", "10min"},
		{5 * 3600, "s", "5h"},
		{30 * 86400, "s", "30d"},
		{-3 * 86400, "s", "-3d"},
		{0, "", "0"},
		{0.001, "", "0.001"},
	} {
		if got := humanValue(tt.v, tt.unit); got != tt.want {
			t.Errorf("humanValue(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}

// frames records each write of moat top's live view, and ends it after
// the second.
type frames struct {
	got    []string
	cancel func()
}

func (f *frames) Write(p []byte) (int, error) {
	f.got = append(f.got, string(p))
	if len(f.got) == 2 {
		f.cancel()
	}
	return len(p), nil
}

// TestTopLive: on a terminal each frame is one write that moves the
// cursor home and clears, then the whole view; it redraws until
// interrupted.
func TestTopLive(t *testing.T) {
	metricsMaster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &frames{cancel: cancel}
	a := &app{stdout: &output{w: f}}
	if err := a.topLive(ctx, f); err != nil {
		t.Fatal(err)
	}
	if len(f.got) != 2 {
		t.Fatalf("%d frames, want 2", len(f.got))
	}
	for i, fr := range f.got {
		if !strings.HasPrefix(fr, "\x1b[H\x1b[2J") || !strings.Contains(fr, "n1") || !strings.Contains(fr, "web") {
			t.Errorf("frame %d: %q", i, fr)
		}
	}
}

// Steps before the first sample and after the last are not rows of the
// table; a range with none says so.
func TestMetricsTableTrims(t *testing.T) {
	nan := masterapi.Value(math.NaN())
	m := masterapi.Metrics{Kind: "node", Name: "n1", Step: 10, Times: []int64{0, 10, 20, 30, 40},
		Fields: []nodeapi.Field{{Name: "cpu", Unit: "cores"}, {Name: "load1"}},
		Avg:    [][]masterapi.Value{{nan, nan, 1, nan, nan}, {nan, nan, nan, 2, nan}}}
	var o output
	if err := metricsTable(&o, m); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(o.buf.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[2], "1.00") || !strings.Contains(lines[3], "2") {
		t.Errorf("table:\n%s\nwant the head and the two sampled steps", o.buf.String())
	}
	m.Avg = [][]masterapi.Value{{nan, nan, nan, nan, nan}, {nan, nan, nan, nan, nan}}
	var none output
	metricsTable(&none, m)
	if got := none.buf.String(); got != "node n1: no sample in this range\n" {
		t.Errorf("no samples: %q", got)
	}
}
