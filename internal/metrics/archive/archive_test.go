package archive

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/metrics/rrd"
	"github.com/moatcloud/moat/internal/nodeapi"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// open opens a store in a fresh directory with a clock at t0 and the
// replicas of placed on their nodes.
func open(t testing.TB, dir string, placed map[string]string) (*Store, *clock) {
	t.Helper()
	c := &clock{t: t0}
	s, err := Open(dir, Options{
		Now:       c.now,
		ReplicaOn: func(node, id string) bool { return placed[id] == node },
		RouteApp: func(host string) (string, bool) {
			if host == "web.example" {
				return "web", true
			}
			return "", false
		},
		GCInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

func nodeGroup(name string, cpu float64) nodeapi.MetricsGroup {
	v := make([]float64, len(nodeapi.NodeFields))
	for i := range v {
		v[i] = float64(i)
	}
	v[0] = cpu
	return nodeapi.MetricsGroup{Kind: nodeapi.GroupNode, Name: name, Values: v}
}

func ctrGroup(id string, cpu, mem float64) nodeapi.MetricsGroup {
	v := make([]float64, len(nodeapi.ContainerFields))
	for i := range v {
		v[i] = math.NaN()
	}
	v[0], v[1] = cpu, mem
	return nodeapi.MetricsGroup{Kind: nodeapi.GroupContainer, Name: id, Values: v}
}

func rec(t time.Time, gs ...nodeapi.MetricsGroup) nodeapi.MetricsRecord {
	return nodeapi.MetricsRecord{Time: t, Groups: gs}
}

func history(t *testing.T, s *Store, kind, name string, since, until time.Time) masterapi.Metrics {
	t.Helper()
	m, err := s.History(masterapi.MetricsQuery{Kind: kind, Name: name, Since: since, Until: until})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestIngestHistoryReopen(t *testing.T) {
	dir := t.TempDir()
	placed := map[string]string{"web-aaaaaa": "n1", "web-bbbbbb": "n2"}
	s, _ := open(t, dir, placed)
	for i := range 6 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		if err := s.Ingest("n1", rec(at, nodeGroup("n1", float64(i)), ctrGroup("web-aaaaaa", 1, 100))); err != nil {
			t.Fatal(err)
		}
		if err := s.Ingest("n2", rec(at.Add(time.Second), ctrGroup("web-bbbbbb", 3, 300))); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"nodes/n1", "apps/web", "replicas/web-aaaaaa", "replicas/web-bbbbbb"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Store) {
		m := history(t, s, "node", "n1", t0, t0.Add(50*time.Second))
		if m.Step != 10 || len(m.Times) != 6 || m.Times[0] != t0.Unix() {
			t.Fatalf("node history: step %v, times %v", m.Step, m.Times)
		}
		for i, v := range m.Avg[0] {
			if float64(v) != float64(i) {
				t.Fatalf("node cpu %d = %v, want %d", i, v, i)
			}
		}
		if m.Avg[2][0] != 2 {
			t.Fatalf("mem_used = %v", m.Avg[2][0])
		}
		a := history(t, s, "app", "web", t0, t0.Add(50*time.Second))
		if a.Fields[len(a.Fields)-1].Name != "replicas" {
			t.Fatalf("app fields %v", a.Fields)
		}
		if a.Avg[0][0] != 2 || a.Min[0][0] != 1 || a.Max[0][0] != 3 || a.Avg[len(a.Fields)-1][0] != 2 {
			t.Fatalf("app step 0: cpu avg/min/max %v/%v/%v replicas %v", a.Avg[0][0], a.Min[0][0], a.Max[0][0], a.Avg[len(a.Fields)-1][0])
		}
		if !math.IsNaN(float64(a.Avg[8][0])) {
			t.Fatalf("health never sampled reads %v, want unknown", a.Avg[8][0])
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, _ := open(t, dir, placed)
	check(s2)
	// A re-delivery after a restart counts once.
	if err := s2.Ingest("n1", rec(t0, nodeGroup("n1", 100))); err != nil {
		t.Fatal(err)
	}
	check(s2)
	if st := s2.Stats(); st.Dropped != 1 {
		t.Fatalf("dropped %d, want 1", st.Dropped)
	}
}

func TestIngestRefuses(t *testing.T) {
	s, _ := open(t, t.TempDir(), map[string]string{"web-aaaaaa": "n1", "api-cccccc": "n2"})
	cases := []struct {
		name string
		node string
		rec  nodeapi.MetricsRecord
		kind error
	}{
		{"another node's name", "n1", rec(t0, nodeGroup("n2", 1)), errs.ErrForbidden},
		{"replica on another node", "n1", rec(t0, ctrGroup("api-cccccc", 1, 1)), errs.ErrForbidden},
		{"replica without app", "n1", rec(t0, ctrGroup("noapp", 1, 1)), errs.ErrForbidden},
		{"future", "n1", rec(t0.Add(3*time.Minute), nodeGroup("n1", 1)), errs.ErrInvalid},
		{"bad node name", "../x", rec(t0, nodeGroup("../x", 1)), errs.ErrInvalid},
		{"dot name", ".x", rec(t0, nodeGroup(".x", 1)), errs.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := s.Ingest(c.node, c.rec); !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want %v", err, c.kind)
			}
		})
	}
	if _, err := s.History(masterapi.MetricsQuery{Kind: "node", Name: "n2"}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("n2 has history: %v", err)
	}
	if _, err := s.History(masterapi.MetricsQuery{Kind: "replica", Name: "api-cccccc"}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("api-cccccc has history: %v", err)
	}
	// Within MaxFuture is taken; an unknown route host is ignored.
	if err := s.Ingest("n1", rec(t0.Add(time.Minute), nodeGroup("n1", 1), nodeapi.MetricsGroup{Kind: nodeapi.GroupRoute, Name: "other.example", Values: []float64{1}})); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Samples != 1 || st.Ignored != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"n1": true, "web-abcdef": true, "web.example.com": true, "": false, ".": false, "..": false,
		"a..b": false, "a/b": false, ".hidden": false, "a b": false, "é": false, string(make([]byte, 256)): false,
	} {
		if got := validName(s); got != want {
			t.Errorf("validName(%q) = %v, want %v", s, got, want)
		}
	}
	for id, app := range map[string]string{"web-abcdef": "web", "my-app-abcdef": "my-app", "web": "", "web-abc": "", "-abcdef": ""} {
		if got := AppOf(id); got != app {
			t.Errorf("AppOf(%q) = %q, want %q", id, got, app)
		}
	}
}

func TestLatestAndRemove(t *testing.T) {
	dir := t.TempDir()
	s, c := open(t, dir, map[string]string{"web-aaaaaa": "n1"})
	r := nodeapi.MetricsGroup{Kind: nodeapi.GroupRoute, Name: "web.example", Values: []float64{5, 0, 0.01, 0.02}}
	if err := s.Ingest("n1", rec(t0, nodeGroup("n1", 0.5), ctrGroup("web-aaaaaa", 0.25, 1<<20), r)); err != nil {
		t.Fatal(err)
	}
	l := s.Latest()
	if len(l) != 3 || l[0].Kind != "node" || l[1].Kind != "replica" || l[2].Kind != "route" {
		t.Fatalf("latest %+v", l)
	}
	if l[1].Node != "n1" || l[1].App != "web" || l[1].Value("mem") != 1<<20 || l[2].App != "web" || l[0].Value("cpu") != 0.5 {
		t.Fatalf("latest %+v", l)
	}
	c.set(t0.Add(LatestTTL + time.Second))
	if l := s.Latest(); len(l) != 1 || l[0].Kind != "node" {
		t.Fatalf("after the TTL: %+v", l)
	}
	c.set(t0)
	if err := s.RemoveApp("web"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"apps/web", "replicas/web-aaaaaa"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s after RemoveApp: %v", p, err)
		}
	}
	if l := s.Latest(); len(l) != 1 || l[0].Kind != "node" {
		t.Fatalf("latest after RemoveApp: %+v", l)
	}
	if err := s.RemoveNode("n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodes/n1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("node file after RemoveNode: %v", err)
	}
	if l := s.Latest(); len(l) != 0 {
		t.Fatalf("latest after removals: %+v", l)
	}
	if _, err := s.History(masterapi.MetricsQuery{Kind: "node", Name: "n1"}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("history after RemoveNode: %v", err)
	}
}

func TestGC(t *testing.T) {
	dir := t.TempDir()
	s, c := open(t, dir, map[string]string{"web-aaaaaa": "n1", "web-bbbbbb": "n1"})
	span := ReplicaSpec[len(ReplicaSpec)-1].Span()
	if err := s.Ingest("n1", rec(t0, ctrGroup("web-aaaaaa", 1, 1))); err != nil {
		t.Fatal(err)
	}
	c.set(t0.Add(span))
	if err := s.Ingest("n1", rec(t0.Add(span), ctrGroup("web-bbbbbb", 1, 1))); err != nil {
		t.Fatal(err)
	}
	n, err := s.GC(t0.Add(span + time.Second))
	if err != nil || n != 1 {
		t.Fatalf("GC removed %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "replicas/web-aaaaaa")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old replica kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "replicas/web-bbbbbb")); err != nil {
		t.Fatalf("recent replica removed: %v", err)
	}
}

func TestFileSizes(t *testing.T) {
	for _, c := range []struct {
		kind byte
		spec rrd.Spec
		want int64
	}{
		{kindNode, rrd.Default, 4096 + 80880*11*14},
		{kindApp, rrd.Default, 4096 + 80880*10*14},
		{kindRoute, rrd.Default, 4096 + 80880*5*14},
		{kindReplica, ReplicaSpec, 4096 + 5040*9*14},
	} {
		h := header{kind: c.kind, fields: len(fieldsOf(c.kind)), spec: c.spec}
		if h.size() != c.want {
			t.Errorf("kind %d: %d bytes, want %d", c.kind, h.size(), c.want)
		}
	}
}

func masterapiQuery(kind, name string) masterapi.MetricsQuery {
	return masterapi.MetricsQuery{Kind: kind, Name: name, Since: t0, Until: t0.Add(time.Hour)}
}

// TestConcurrentIngestHistory: nodes ingesting, readers reading, an app
// removed, all at once (run with -race); every sample of the nodes
// that stay is kept.
func TestConcurrentIngestHistory(t *testing.T) {
	placed := map[string]string{}
	for n := range 4 {
		placed[fmt.Sprintf("web-aaaa%02d", n)] = fmt.Sprintf("n%d", n)
	}
	s, c := open(t, t.TempDir(), placed)
	c.set(t0.Add(time.Hour))
	var wg sync.WaitGroup
	for n := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprintf("n%d", n)
			for i := range 200 {
				at := t0.Add(time.Duration(i) * 10 * time.Second)
				if err := s.Ingest(node, rec(at, nodeGroup(node, float64(i)), ctrGroup(fmt.Sprintf("web-aaaa%02d", n), 1, 1))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				s.History(masterapiQuery("node", "n0"))
				s.History(masterapiQuery("app", "web"))
				s.Latest()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			s.RemoveApp("web")
		}
	}()
	wg.Wait()
	for n := range 4 {
		m := history(t, s, "node", fmt.Sprintf("n%d", n), t0, t0.Add(1990*time.Second))
		for i, v := range m.Avg[0] {
			if float64(v) != float64(i) {
				t.Fatalf("n%d step %d: cpu %v, want %d", n, i, v, i)
			}
		}
	}
}

// TestMappingsBounded: past MaxMapped the least recently used file is
// unmapped and mapped again when needed, losing nothing; the collector
// unmaps files not used since its last run.
func TestMappingsBounded(t *testing.T) {
	c := &clock{t: t0.Add(time.Hour)}
	s, err := Open(t.TempDir(), Options{Now: c.now, GCInterval: -1, MaxMapped: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 30 {
		for n := range 3 {
			node := fmt.Sprintf("n%d", n)
			if err := s.Ingest(node, rec(t0.Add(time.Duration(i)*10*time.Second), nodeGroup(node, float64(i)))); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Archives > 2 {
				t.Fatalf("%d files mapped, bound 2", st.Archives)
			}
		}
	}
	for n := range 3 {
		m := history(t, s, "node", fmt.Sprintf("n%d", n), t0, t0.Add(290*time.Second))
		for i, v := range m.Avg[0] {
			if float64(v) != float64(i) {
				t.Fatalf("n%d step %d: %v", n, i, v)
			}
		}
	}
	s.unmapIdle()
	s.History(masterapiQuery("node", "n0"))
	if n := s.unmapIdle(); n != 1 || s.Stats().Archives != 1 {
		t.Fatalf("unmapped %d idle, %d left; want the one not read since", n, s.Stats().Archives)
	}
}

// TestHistoryConsolidates: more steps than points, or a step coarser than
// the archive's, merge k steps per point: avg weighted by count, min of
// mins, max of maxes, aligned to k steps.
func TestHistoryConsolidates(t *testing.T) {
	s, c := open(t, t.TempDir(), nil)
	c.set(t0.Add(time.Hour))
	for i := range 60 {
		if err := s.Ingest("n1", rec(t0.Add(time.Duration(i)*10*time.Second), nodeGroup("n1", float64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name   string
		q      masterapi.MetricsQuery
		step   float64
		points int
		avg0   float64
		max0   float64
	}{
		{"fits", masterapi.MetricsQuery{Since: t0, Until: t0.Add(590 * time.Second)}, 10, 60, 0, 0},
		{"six points", masterapi.MetricsQuery{Since: t0, Until: t0.Add(590 * time.Second), Points: 6}, 120, 5, 5.5, 11},
		{"a step of 24h", masterapi.MetricsQuery{Since: t0, Until: t0.Add(590 * time.Second), Step: 24 * time.Hour}, 86400, 1, 29.5, 59},
		{"a step of 30s", masterapi.MetricsQuery{Since: t0, Until: t0.Add(590 * time.Second), Step: 30 * time.Second}, 30, 20, 1, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Kind, tt.q.Name = "node", "n1"
			m, err := s.History(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if m.Step != tt.step || len(m.Times) != tt.points || float64(m.Avg[0][0]) != tt.avg0 || float64(m.Max[0][0]) != tt.max0 || m.Min[0][0] != 0 {
				t.Fatalf("step %v, %d points, first avg %v min %v max %v; want step %v, %d points, avg %v max %v",
					m.Step, len(m.Times), m.Avg[0][0], m.Min[0][0], m.Max[0][0], tt.step, tt.points, tt.avg0, tt.max0)
			}
		})
	}
}
