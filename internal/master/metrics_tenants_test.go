package master

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	metricstore "github.com/moatcloud/moat/internal/metrics/archive"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// TestMetricsTenants: a tenant's caller reads the metrics of its own
// apps, replicas and routes, named as it names them, and never another
// tenant's; nodes only when asked for.
func TestMetricsTenants(t *testing.T) {
	now := time.Now().UTC()
	st, err := metricstore.Open(t.TempDir(), metricstore.Options{
		Now: func() time.Time { return now },
		RouteApp: func(host string) (string, bool) {
			return map[string]string{"shop.example": "shop.web", "blog.example": "blog.web"}[host], true
		},
		GCInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := &Master{metrics: st}
	m.metricsIndex.read = now.Add(time.Hour) // no database here: the index below is all there is
	m.metricsIndex.hosts = map[string]string{"shop.example": "shop.web", "blog.example": "blog.web"}
	ctr := func(id string) nodeapi.MetricsGroup {
		return nodeapi.MetricsGroup{Kind: nodeapi.GroupContainer, Name: id, Values: []float64{1, 2}}
	}
	route := func(host string) nodeapi.MetricsGroup {
		return nodeapi.MetricsGroup{Kind: nodeapi.GroupRoute, Name: host, Values: []float64{5}}
	}
	rec := nodeapi.MetricsRecord{Time: now, Groups: []nodeapi.MetricsGroup{{Kind: nodeapi.GroupNode, Name: "n1", Values: []float64{1}},
		ctr("shop.web-aaaaaa"), ctr("blog.web-bbbbbb"), route("shop.example"), route("blog.example")}}
	if err := st.Ingest("n1", rec); err != nil {
		t.Fatal(err)
	}
	shop := access.WithCaller(context.Background(), access.Caller{User: "alice", Tenant: "shop"})

	l, err := m.MetricsLatest(shop, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range l {
		got = append(got, x.Kind+" "+x.Name+" "+x.App)
	}
	if want := []string{"replica shop.web-aaaaaa web", "route shop.example web"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("shop's latest %q, want %q", got, want)
	}
	if l, _ := m.MetricsLatest(shop, true); len(l) != 3 || l[0].Kind != "node" {
		t.Fatalf("shop's latest with nodes: %+v", l)
	}
	for _, q := range []masterapi.MetricsQuery{{Kind: "app", Name: "web"}, {Kind: "replica", Name: "shop.web-aaaaaa"}, {Kind: "route", Name: "shop.example"}} {
		h, err := m.MetricsHistory(shop, q)
		if err != nil || h.Name != q.Name {
			t.Errorf("shop reads its %s %s: %v (name %q)", q.Kind, q.Name, err, h.Name)
		}
	}
	for _, q := range []masterapi.MetricsQuery{{Kind: "app", Name: "blog.web"}, {Kind: "replica", Name: "blog.web-bbbbbb"}, {Kind: "route", Name: "blog.example"}} {
		if _, err := m.MetricsHistory(shop, q); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("shop reads blog's %s %s: %v; want not found", q.Kind, q.Name, err)
		}
	}
}
