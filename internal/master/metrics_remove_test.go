package master

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	metricstore "github.com/moatcloud/moat/internal/metrics/archive"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// TestMetricsOfRemovedAppStayRemoved: an app removed while its replicas
// still run (they are stopped after) and its edge still counts its host:
// their samples are refused from then on, so the app's, replicas' and
// route's archives removed with it are not made again; and once the
// index is read again from the records, a replica of an app no longer
// there (kept while it is stopped) is not taken for placed.
func TestMetricsOfRemovedAppStayRemoved(t *testing.T) {
	now := time.Now().UTC()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "master.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := &Master{db: db}
	m.metricsIndex.read = now.Add(time.Hour) // the index below as it stood before the removal
	m.metricsIndex.replicas = map[string]string{"web-aaaaaa": "n1", "api-bbbbbb": "n1"}
	m.metricsIndex.hosts = map[string]string{"web.example": "web", "api.example": "api"}
	st, err := metricstore.Open(filepath.Join(dir, "metrics"), metricstore.Options{Now: func() time.Time { return now.Add(time.Minute) },
		ReplicaOn: m.metricsIndex.replicaOn(m), RouteApp: m.metricsIndex.routeApp(m), GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m.metrics = st
	sample := func(at time.Time) error {
		return st.Ingest("n1", nodeapi.MetricsRecord{Time: at, Groups: []nodeapi.MetricsGroup{
			{Kind: nodeapi.GroupContainer, Name: "web-aaaaaa", Values: []float64{1}},
			{Kind: nodeapi.GroupContainer, Name: "api-bbbbbb", Values: []float64{1}},
			{Kind: nodeapi.GroupRoute, Name: "web.example", Values: []float64{1}},
			{Kind: nodeapi.GroupRoute, Name: "api.example", Values: []float64{1}},
		}})
	}
	files := []string{"apps/web", "replicas/web-aaaaaa", "routes/web.example"}
	exists := func(f string) bool {
		_, err := os.Stat(filepath.Join(dir, "metrics", f))
		return err == nil
	}
	if err := sample(now); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !exists(f) {
			t.Fatalf("%s not made by the first sample", f)
		}
	}

	m.removeMetrics("app", "web")
	sample(now.Add(10 * time.Second)) // refused in part: an error
	for _, f := range files {
		if exists(f) {
			t.Errorf("%s made again by a sample after the app was removed", f)
		}
	}
	for _, f := range []string{"apps/api", "replicas/api-bbbbbb", "routes/api.example"} {
		if !exists(f) {
			t.Errorf("%s of the app kept is gone", f)
		}
	}
	for _, l := range st.Latest() {
		if l.App == "web" {
			t.Errorf("a newest sample of the removed app: %+v", l)
		}
	}

	// Read from the records: web-cccccc is being stopped (its app is
	// gone), api-dddddd runs.
	ctx := context.Background()
	for _, r := range []store.Replica{{ID: "web-cccccc", App: "web", Node: "n1", Desired: "stop"}, {ID: "api-dddddd", App: "api", Node: "n1", Desired: "run"}} {
		if err := db.AddReplica(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.NewRevision(ctx, store.Revision{App: "api", Spec: []byte(`{"name":"api"}`)}); err != nil {
		t.Fatal(err)
	}
	m.metricsIndex.mu.Lock()
	m.metricsIndex.read = time.Time{}
	m.metricsIndex.refresh(m)
	m.metricsIndex.mu.Unlock()
	on := m.metricsIndex.replicaOn(m)
	if on("n1", "web-cccccc") || !on("n1", "api-dddddd") {
		t.Errorf("placed: web-cccccc (app removed) %v, api-dddddd %v; want false, true", on("n1", "web-cccccc"), on("n1", "api-dddddd"))
	}
}
