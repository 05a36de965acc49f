package master

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
	"github.com/moatcloud/moat/internal/sshx"
)

// sample is a Latest of kind with the named fields set (the rest
// unknown).
func sample(kind, name string, at time.Time, fields map[string]float64) masterapi.Latest {
	group := map[string]byte{masterapi.MetricsNode: nodeapi.GroupNode, masterapi.MetricsReplica: nodeapi.GroupContainer}[kind]
	l := masterapi.Latest{Kind: kind, Name: name, Time: at}
	for _, f := range nodeapi.FieldsOf(group) {
		v, ok := fields[f.Name]
		if !ok {
			v = math.NaN()
		}
		l.Values = append(l.Values, masterapi.Value(v))
	}
	return l
}

// TestAlertsFromSamples: the master's evaluation on synthetic samples —
// a node's disk over 90 % fires at once, a replica over its app's memory
// threshold (alerts: {memory: 80%}) once it lasted 10 s; each resolves
// only below the threshold less the hysteresis; every change is in the
// alerts table and queued, in order, for the webhook; a master that
// loads the table again neither forgets nor fires again.
func TestAlertsFromSamples(t *testing.T) {
	ctx := context.Background()
	m := alertsMaster(t)
	if _, err := m.db.AddWebhook(ctx, "ops", "http://127.0.0.1:9/"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Minute)
	w := func(at time.Time) *world {
		return &world{now: at,
			nodes: map[string]store.Node{"n1": {Name: "n1"}},
			views: map[string]view{"n1": {name: "n1", state: sshx.Up, since: t0.Add(-time.Hour), synced: true,
				containers: map[string]nodeapi.Container{"web-a": {ID: "web-a", State: nodeapi.StateRunning, Started: t0.Add(-time.Hour)}}}},
			apps:     []appState{{App: store.App{Name: "web", Revision: 1}, rev: store.Revision{Status: store.StatusDeployed}, spec: spec.App{Alerts: spec.Alerts{Memory: 80}}}},
			replicas: []store.Replica{{ID: "web-a", App: "web", Node: "n1", Desired: store.Run}},
		}
	}
	step := func(i int, disk, mem float64) []string {
		at := t0.Add(time.Duration(i) * 5 * time.Second)
		samples := []masterapi.Latest{
			sample(masterapi.MetricsNode, "n1", at, map[string]float64{"disk_used": disk, "disk_total": 100}),
			sample(masterapi.MetricsReplica, "web-a", at, map[string]float64{"mem": mem, "mem_limit": 1000}),
		}
		m.judgeAlerts(ctx, m.alertSnapshot(w(at), samples))
		list, err := m.Alerts(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		var active []string
		for _, a := range list.Active {
			active = append(active, a.Key)
		}
		return active
	}
	for i, tc := range []struct {
		disk, mem float64
		want      []string
	}{
		{95, 850, []string{"disk-full/n1"}}, // memory pending
		{89, 790, []string{"disk-full/n1"}}, // memory dips: pending dropped
		{88, 850, []string{"disk-full/n1"}},
		{87, 860, []string{"disk-full/n1"}},
		{86, 870, []string{"disk-full/n1", "memory-near-limit/web-a"}}, // 10 s past 80 %
		{91, 760, []string{"disk-full/n1", "memory-near-limit/web-a"}}, // held above 75 %
		{85, 740, nil}, // both below the hysteresis
	} {
		if got := step(i, tc.disk, tc.mem); !slices.Equal(got, tc.want) {
			t.Fatalf("step %d (disk %v%%, memory %v of 1000): active %v, want %v", i, tc.disk, tc.mem, got, tc.want)
		}
	}
	var notices []string
	for {
		seq, body, ok, err := m.db.NextNotice(ctx, "ops")
		if err != nil || !ok {
			break
		}
		var n masterapi.AlertNotice
		json.Unmarshal(body, &n)
		notices = append(notices, n.Status+" "+n.Alert.Key)
		if n.Alert.Rule == "memory-near-limit" && n.Status == "firing" && (n.Alert.App != "web" || n.Alert.Value < 80) {
			t.Errorf("memory notice: %+v", n.Alert)
		}
		m.db.DeleteNotice(ctx, seq)
	}
	want := []string{"firing disk-full/n1", "firing memory-near-limit/web-a", "resolved disk-full/n1", "resolved memory-near-limit/web-a"}
	if !slices.Equal(notices, want) {
		t.Errorf("notices queued: %v, want %v", notices, want)
	}

	// Fire again, then load the table as a restarted master would, with
	// no sample yet: nothing is resolved or fired again.
	step(10, 99, 100)
	m.alerts = alerter{}
	if err := m.loadAlerts(ctx); err != nil {
		t.Fatal(err)
	}
	m.judgeAlerts(ctx, m.alertSnapshot(w(t0.Add(time.Minute)), nil))
	if seq, body, ok, _ := m.db.NextNotice(ctx, "ops"); !ok || json.Unmarshal(body, new(masterapi.AlertNotice)) != nil {
		t.Fatalf("the second disk alert was not queued")
	} else {
		m.db.DeleteNotice(ctx, seq)
	}
	if _, body, ok, _ := m.db.NextNotice(ctx, "ops"); ok {
		t.Errorf("after loading again with no samples, a notice was queued: %s", body)
	}
	if list, _ := m.Alerts(ctx, true); len(list.Active) != 1 || list.Active[0].Key != "disk-full/n1" {
		t.Errorf("after loading again: %+v", list.Active)
	}
	if list, _ := m.Alerts(ctx, false); len(list.Active) != 0 {
		t.Errorf("a caller who may not list nodes sees %+v", list.Active)
	}
}

// alertsMaster is a master opened on a fresh state, not running, with its
// alerts table loaded: the alert judgement without a cluster.
func alertsMaster(t *testing.T) *Master {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "master")
	if _, _, err := Init(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{Dir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.db.Close() })
	if err := m.loadAlerts(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}
