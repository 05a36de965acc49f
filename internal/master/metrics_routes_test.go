package master

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	metricstore "github.com/moatcloud/moat/internal/metrics/archive"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// TestMetricsRouteHostsBounded: an edge counts its requests per route host
// as the table names it ("*.shop.example" for a wildcard route), so a node
// reporting names under a wildcard ("a1.shop.example", "a2...") is not an
// edge reporting its routes: each such name would be an archive file of
// its own and an entry in memory, without bound (a node's disk-filling
// flood). Only the hosts the apps' specs name are kept; the wildcard's own
// name is.
func TestMetricsRouteHostsBounded(t *testing.T) {
	now := time.Now().UTC()
	dir := t.TempDir()
	m := &Master{}
	m.metricsIndex.read = now.Add(time.Hour) // no database here: the index below is all there is
	m.metricsIndex.hosts = map[string]string{"*.shop.example": "shop.web", "blog.example": "blog.web"}
	st, err := metricstore.Open(dir, metricstore.Options{Now: func() time.Time { return now }, RouteApp: m.metricsIndex.routeApp(m), GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m.metrics = st
	rec := nodeapi.MetricsRecord{Time: now, Groups: []nodeapi.MetricsGroup{
		{Kind: nodeapi.GroupRoute, Name: "*.shop.example", Values: []float64{1}},
		{Kind: nodeapi.GroupRoute, Name: "blog.example", Values: []float64{1}},
	}}
	for i := range 200 {
		rec.Groups = append(rec.Groups, nodeapi.MetricsGroup{Kind: nodeapi.GroupRoute, Name: fmt.Sprintf("x%d.shop.example", i), Values: []float64{1}})
	}
	st.Ingest("n1", rec) // an error may name what was refused
	ents, err := os.ReadDir(filepath.Join(dir, "routes"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "*.shop.example" || names[1] != "blog.example" {
		t.Errorf("route archives %d: %q...; want the two hosts the specs name", len(names), names[:min(5, len(names))])
	}
	if n := len(st.Latest()); n != 2 {
		t.Errorf("%d routes in the newest samples; want 2", n)
	}
}

// TestMetricsAppOfAnotherTenantByKey: the default tenant's apps are keyed
// by their bare names, other tenants' "tenant.app": a caller in the
// default tenant asking for app "shop.web" must not get tenant shop's.
func TestMetricsAppOfAnotherTenantByKey(t *testing.T) {
	now := time.Now().UTC()
	st, err := metricstore.Open(t.TempDir(), metricstore.Options{Now: func() time.Time { return now }, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := &Master{metrics: st}
	rec := nodeapi.MetricsRecord{Time: now, Groups: []nodeapi.MetricsGroup{{Kind: nodeapi.GroupContainer, Name: "shop.web-aaaaaa", Values: []float64{1}}}}
	if err := st.Ingest("n1", rec); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"default", ""} {
		ctx := access.WithCaller(context.Background(), access.Caller{User: "dee", Tenant: tenant})
		if h, err := m.MetricsHistory(ctx, masterapi.MetricsQuery{Kind: "app", Name: "shop.web"}); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("tenant %q reads app shop.web: %v %+v; want not found", tenant, err, h.Fields)
		}
	}
	all := access.WithCaller(context.Background(), access.Caller{User: "boss", Tenant: AllTenants})
	if _, err := m.MetricsHistory(all, masterapi.MetricsQuery{Kind: "app", Name: "shop.web"}); err != nil {
		t.Errorf("every tenant's caller reads app shop.web: %v", err)
	}
}
