package store

import (
	"context"
	"testing"
	"time"
)

// TestEvents: events are read oldest first, by app, node and tenant
// (nodes' own only when asked for), the newest or the oldest Limit, and
// pruned to their bounds by count and by age.
func TestEvents(t *testing.T) {
	d, _ := openTest(t)
	ctx := context.Background()
	now := time.Now().UTC()
	in := []Event{
		{Time: now.Add(-3 * time.Hour), Kind: "node-up", Node: "n1"},
		{Time: now.Add(-2 * time.Hour), Kind: "deploy", App: "web", Tenant: "default", Revision: 1},
		{Time: now.Add(-time.Hour), Kind: "restart", App: "acme.api", Tenant: "acme", Node: "n1", Replica: "api-1"},
		{Kind: "node-down", Node: "n2", Message: "unreachable"},
	}
	ids, err := d.AddEvents(ctx, in)
	if err != nil || len(ids) != 4 || ids[0] >= ids[3] {
		t.Fatalf("AddEvents: %v, %v", ids, err)
	}
	kinds := func(q EventQuery) []string {
		t.Helper()
		got, err := d.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range got {
			out = append(out, e.Kind)
		}
		return out
	}
	cases := []struct {
		name string
		q    EventQuery
		want []string
	}{
		{"all", EventQuery{Nodes: true}, []string{"node-up", "deploy", "restart", "node-down"}},
		{"apps only", EventQuery{}, []string{"deploy", "restart"}},
		{"tenant acme", EventQuery{Tenant: "acme"}, []string{"restart"}},
		{"tenant default and nodes", EventQuery{Tenant: "default", Nodes: true}, []string{"node-up", "deploy", "node-down"}},
		{"node n1", EventQuery{Node: "n1", Nodes: true}, []string{"node-up", "restart"}},
		{"app", EventQuery{App: "web", Nodes: true}, []string{"deploy"}},
		{"since 90m", EventQuery{Since: now.Add(-90 * time.Minute), Nodes: true}, []string{"restart", "node-down"}},
		{"newest 2", EventQuery{Limit: 2, Nodes: true}, []string{"restart", "node-down"}},
		{"oldest 2 after the first", EventQuery{After: ids[0], Limit: 2, Oldest: true, Nodes: true}, []string{"deploy", "restart"}},
		{"before the last", EventQuery{Before: ids[3], Nodes: true}, []string{"node-up", "deploy", "restart"}},
	}
	for _, c := range cases {
		if got := kinds(c.q); !equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	got, _ := d.Events(ctx, EventQuery{Node: "n2", Nodes: true})
	if len(got) != 1 || got[0].Message != "unreachable" || time.Since(got[0].Time) > time.Minute {
		t.Errorf("an event without a time: %+v; want stamped now", got)
	}
	if last, err := d.LastEventID(ctx); err != nil || last != ids[3] {
		t.Errorf("LastEventID %d, %v; want %d", last, err, ids[3])
	}

	// Bounds: the newest 2, then none older than 2h30m.
	if n, err := d.PruneEvents(ctx, 2, 24*time.Hour); err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want 2", n, err)
	}
	if got := kinds(EventQuery{Nodes: true}); !equal(got, []string{"restart", "node-down"}) {
		t.Errorf("after keeping 2: %v", got)
	}
	if n, err := d.PruneEvents(ctx, 100, 30*time.Minute); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want the one older than 30m", n, err)
	}
	if got := kinds(EventQuery{Nodes: true}); !equal(got, []string{"node-down"}) {
		t.Errorf("after 30m's bound: %v", got)
	}
}

// TestMetricsCursors: a node without one is at 0; set, read back,
// replaced and removed.
func TestMetricsCursors(t *testing.T) {
	d, _ := openTest(t)
	ctx := context.Background()
	if c, err := d.MetricsCursor(ctx, "n1"); err != nil || c != 0 {
		t.Fatalf("no cursor yet: %d, %v", c, err)
	}
	for _, seq := range []uint64{5, 1 << 40} {
		if err := d.SetMetricsCursor(ctx, "n1", seq); err != nil {
			t.Fatal(err)
		}
		if c, err := d.MetricsCursor(ctx, "n1"); err != nil || c != seq {
			t.Fatalf("cursor %d, %v; want %d", c, err, seq)
		}
	}
	if err := d.SetMetricsCursors(ctx, map[string]uint64{"n1": 7, "n2": 9}); err != nil {
		t.Fatal(err)
	}
	for node, want := range map[string]uint64{"n1": 7, "n2": 9} {
		if c, err := d.MetricsCursor(ctx, node); err != nil || c != want {
			t.Fatalf("%s's cursor %d, %v after a batch; want %d", node, c, err, want)
		}
	}
	if err := d.RemoveMetricsCursor(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if c, _ := d.MetricsCursor(ctx, "n1"); c != 0 {
		t.Errorf("removed cursor reads %d", c)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
