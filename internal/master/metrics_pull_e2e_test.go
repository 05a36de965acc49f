package master_test

import (
	"context"
	"database/sql"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// pullCluster is one real node sampling every second, enrolled with a
// real master.
func pullCluster(t *testing.T) (*testcluster.Cluster, *testcluster.Master) {
	t.Helper()
	c := testcluster.NewCluster(t, 1)
	c.NodeConf = append(c.NodeConf, "metrics-interval=1s")
	m := c.StartMaster()
	c.Enrol(m, "n1")
	return c, m
}

// masterCursor reads the master's stored metrics cursor of a node from
// its database (read only, beside the running master).
func masterCursor(t *testing.T, m *testcluster.Master, node string) uint64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(m.Dir, "master.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seq int64
	if err := db.QueryRow(`SELECT seq FROM metrics_cursors WHERE node = ?`, node).Scan(&seq); err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	return uint64(seq)
}

// nodeNewest is the newest sequence in a node's ring.
func nodeNewest(t *testing.T, c *testcluster.Cluster, node string) uint64 {
	t.Helper()
	page, err := nodeapi.UnixClient(c.Socket(node)).Metrics(context.Background(), math.MaxUint64-1, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return page.Newest
}

// waitCursor polls until the master's stored cursor of the node is at
// least seq, and says how long that took.
func waitCursor(t *testing.T, m *testcluster.Master, node string, seq uint64, within time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	for {
		got := masterCursor(t, m, node)
		if got >= seq {
			return time.Since(t0)
		}
		if time.Since(t0) > within {
			t.Fatalf("the master's cursor of %s at %d after %s; want %d", node, got, within, seq)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsOutageNoGap: a node sampling every second while the master
// is stopped for 2 minutes, the outage issue 14 names (backfilling many
// pages is TestPullerBackfill's): once it is back, it backfills from its
// stored cursor to the node's newest record, and the node's history at
// 10 s steps has every step from before the outage to after it.
func TestMetricsOutageNoGap(t *testing.T) {
	const outage = 2 * time.Minute
	c, m := pullCluster(t)
	ctx := context.Background()
	// The master pulls: its cursor follows the node's ring, for 25 s of
	// samples before the outage.
	waitCursor(t, m, "n1", 25, 90*time.Second)
	stopped := time.Now()
	m.Kill9()
	before := masterCursor(t, m, "n1")
	time.Sleep(outage)
	newest := nodeNewest(t, c, "n1")
	restarted := time.Now()
	m.Start()
	took := waitCursor(t, m, "n1", newest, 60*time.Second)
	t.Logf("outage of %s: %d records backfilled in %s after the master answered again", restarted.Sub(stopped).Round(time.Second), newest-before, took.Round(time.Millisecond))

	h, err := m.Client.MetricsHistory(ctx, masterapi.MetricsQuery{Kind: masterapi.MetricsNode, Name: "n1",
		Since: stopped.Add(-15 * time.Second), Until: restarted, Step: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if h.Step != 10 {
		t.Fatalf("history at a %gs step, want 10s", h.Step)
	}
	mem := -1
	for i, f := range h.Fields {
		if f.Name == "mem_used" {
			mem = i
		}
	}
	var missing []string
	covered := 0
	for i, at := range h.Times {
		start := time.Unix(at, 0)
		// Steps wholly inside [stopped-15s, restarted]: the first and last may
		// be cut by the query's bounds.
		if start.Before(stopped.Add(-15*time.Second)) || start.Add(10*time.Second).After(restarted) {
			continue
		}
		covered++
		if v := float64(h.Avg[mem][i]); math.IsNaN(v) || v <= 0 {
			missing = append(missing, start.UTC().Format("15:04:05"))
		}
	}
	if covered < int(outage/(10*time.Second)) || len(missing) > 0 {
		t.Errorf("of %d steps of 10s across the outage, %d have no sample: %s", covered, len(missing), strings.Join(missing, " "))
	}
}

// TestMetricsRingAnew: a node whose ring was made anew (its disk
// replaced, the file removed) answers with a gap: the master records a
// metrics-gap event for it and goes on pulling the new ring.
func TestMetricsRingAnew(t *testing.T) {
	c, m := pullCluster(t)
	waitCursor(t, m, "n1", 30, 90*time.Second)
	if err := c.StopNode("n1"); err != nil {
		t.Fatal(err)
	}
	n, err := c.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(n.Dir, "var-lib-moat", "metrics.ring")); err != nil {
		t.Fatal(err)
	}
	old := masterCursor(t, m, "n1")
	if err := c.StartNode("n1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var gaps []masterapi.Event
	for len(gaps) == 0 {
		events, err := m.Client.Events(context.Background(), masterapi.EventQuery{Node: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Kind == masterapi.EventMetricsGap {
				gaps = append(gaps, e)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics gap of n1 in the event log within 60s:\n%s", describe(events))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(gaps[0].Message, "made anew") {
		t.Errorf("the gap event says %q; want it to say the ring was made anew", gaps[0].Message)
	}
	// The pull goes on in the new ring: the cursor, reset below where it
	// stood in the old one, follows the new ring's records.
	first := nodeNewest(t, c, "n1")
	for {
		cur, newest := masterCursor(t, m, "n1"), nodeNewest(t, c, "n1")
		if cur < old && cur >= first+3 && cur <= newest {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cursor at %d (in the old ring %d), the new ring's newest %d: not pulling the new ring", cur, old, newest)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
