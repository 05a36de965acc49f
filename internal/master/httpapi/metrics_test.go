package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/metrics/archive"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/wire"
)

// metricsCP serves the metrics routes from a real archive store.
type metricsCP struct {
	roles
	store *archive.Store
}

func (f *metricsCP) MetricsHistory(_ context.Context, q masterapi.MetricsQuery) (masterapi.Metrics, error) {
	return f.store.History(q)
}

func (f *metricsCP) MetricsLatest(_ context.Context, nodes bool) ([]masterapi.Latest, error) {
	out := []masterapi.Latest{}
	for _, l := range f.store.Latest() {
		if l.Kind != masterapi.MetricsNode || nodes {
			out = append(out, l)
		}
	}
	return out, nil
}

// metricsServer is the API over HTTP for caller, with a store holding a
// minute of node n1 and its replica web-aaaaaa.
func metricsServer(t *testing.T, caller access.Caller) (*masterapi.Client, time.Time) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Minute)
	st, err := archive.Open(t.TempDir(), archive.Options{Now: func() time.Time { return now }, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i := range 6 {
		nv := make([]float64, len(nodeapi.NodeFields))
		nv[0] = float64(i)
		cv := make([]float64, len(nodeapi.ContainerFields))
		cv[1] = 1 << 20
		rec := nodeapi.MetricsRecord{Time: now.Add(time.Duration(i-6) * 10 * time.Second), Groups: []nodeapi.MetricsGroup{
			{Kind: nodeapi.GroupNode, Name: "n1", Values: nv}, {Kind: nodeapi.GroupContainer, Name: "web-aaaaaa", Values: cv}}}
		if err := st.Ingest("n1", rec); err != nil {
			t.Fatal(err)
		}
	}
	cp := &metricsCP{roles: roles{bindings: map[string][]access.Binding{"alice": {{Tenant: "shop", Role: access.Viewer}}}}, store: st}
	s := &server{cp: cp, log: slog.New(slog.DiscardHandler), callerOf: func(*http.Request) (access.Caller, error) { return caller, nil }}
	srv := httptest.NewServer(s.handler())
	t.Cleanup(srv.Close)
	return &masterapi.Client{Client: wire.Client{HTTP: srv.Client(), Base: srv.URL, What: "master"}}, now
}

// TestMetricsHistoryAPI: history read through the HTTP API and the
// client; bad parameters are 400 naming the parameter, an unknown thing
// 404.
func TestMetricsHistoryAPI(t *testing.T) {
	c, now := metricsServer(t, access.Root)
	ctx := context.Background()
	m, err := c.MetricsHistory(ctx, masterapi.MetricsQuery{Kind: "node", Name: "n1", Since: now.Add(-time.Minute), Until: now.Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if m.Step != 10 || len(m.Times) != 6 || m.Fields[0].Name != "cpu" || m.Avg[0][5] != 5 {
		t.Fatalf("history: step %v times %v fields %v cpu %v", m.Step, m.Times, m.Fields, m.Avg[0])
	}
	m, err = c.MetricsHistory(ctx, masterapi.MetricsQuery{Kind: "app", Name: "web", Step: 5 * time.Minute})
	if err != nil || m.Step != 300 {
		t.Fatalf("app at 5m: step %v, %v", m.Step, err)
	}
	if _, err := c.MetricsHistory(ctx, masterapi.MetricsQuery{Kind: "node", Name: "n2"}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("unknown node: %v", err)
	}
	for _, tt := range []struct{ query, param string }{
		{"since=yesterday", "since"},
		{"until=-5", "until"},
		{"step=fast", "step"},
		{"step=-5m", "step"},
		{"points=many", "points"},
		{"points=1000000", "points"},
		{"since=2026-12-07T12:00:00Z&until=2026-12-07T11:00:00Z", "since"},
	} {
		err := c.Call(ctx, http.MethodGet, "/v1/metrics/node/n1?"+tt.query, nil, nil)
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tt.param) {
			t.Errorf("?%s: %v; want 400 naming %s", tt.query, err, tt.param)
		}
	}
	if err := c.Call(ctx, http.MethodGet, "/v1/metrics/disk/n1", nil, nil); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("unknown kind: %v", err)
	}
}

// TestMetricsLatestAPI: the latest samples; nodes only for a caller who
// may list nodes; a node's history refused to a tenant's viewer.
func TestMetricsLatestAPI(t *testing.T) {
	ctx := context.Background()
	root, _ := metricsServer(t, access.Root)
	l, err := root.MetricsLatest(ctx)
	if err != nil || len(l) != 2 || l[0].Kind != "node" || l[0].Value("cpu") != 5 || l[1].Kind != "replica" || l[1].Value("mem") != 1<<20 {
		t.Fatalf("root's latest: %+v, %v", l, err)
	}
	alice, _ := metricsServer(t, access.Caller{User: "alice", Credential: "SHA256:x", Tenant: "shop"})
	l, err = alice.MetricsLatest(ctx)
	if err != nil || len(l) != 1 || l[0].Kind != "replica" {
		t.Fatalf("a viewer's latest: %+v, %v", l, err)
	}
	if _, err := alice.MetricsHistory(ctx, masterapi.MetricsQuery{Kind: "node", Name: "n1"}); !errors.Is(err, errs.ErrForbidden) || !strings.Contains(err.Error(), string(access.NodeList)) {
		t.Fatalf("a viewer reads a node's history: %v", err)
	}
	if _, err := alice.MetricsHistory(ctx, masterapi.MetricsQuery{Kind: "replica", Name: "web-aaaaaa"}); err != nil {
		t.Fatalf("a viewer reads a replica's history: %v", err)
	}
}
