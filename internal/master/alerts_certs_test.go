package master

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/alert"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshx"
)

// TestCertsSeen: per host the soonest expiry among the edges, each
// edge's newest sample; no certificate (NaN) forgets an edge's; a sample
// older than LatestTTL, of a node no longer an edge or of a removed app
// does not count; values past any sense (±Inf, 1e300) are bounded, an
// expired certificate is in the past.
func TestCertsSeen(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	day := 24 * 3600.0
	type report struct {
		node, host, app string
		ago             time.Duration
		left            float64
	}
	for _, tc := range []struct {
		name    string
		reports []report
		want    map[string]time.Time // host → NotAfter
	}{
		{"soonest of two edges", []report{{"e1", "web.test", "web", 0, 60 * day}, {"e2", "web.test", "web", 0, 10 * day}},
			map[string]time.Time{"web.test": now.Add(240 * time.Hour)}},
		{"an edge's newest sample", []report{{"e1", "web.test", "web", time.Second, 5 * day}, {"e1", "web.test", "web", 0, 80 * day}},
			map[string]time.Time{"web.test": now.Add(80 * 24 * time.Hour)}},
		{"an older sample after", []report{{"e1", "web.test", "web", 0, 80 * day}, {"e1", "web.test", "web", time.Minute, 5 * day}},
			map[string]time.Time{"web.test": now.Add(80 * 24 * time.Hour)}},
		{"no certificate any more", []report{{"e1", "web.test", "web", time.Second, 5 * day}, {"e1", "web.test", "web", 0, math.NaN()}}, map[string]time.Time{}},
		{"stale", []report{{"e1", "web.test", "web", 6 * time.Minute, 5 * day}}, map[string]time.Time{}},
		{"not an edge", []report{{"n1", "web.test", "web", 0, day}, {"e1", "web.test", "web", 0, 30 * day}},
			map[string]time.Time{"web.test": now.Add(30 * 24 * time.Hour)}},
		{"removed app", []report{{"e1", "gone.test", "gone", 0, day}}, map[string]time.Time{}},
		{"expired", []report{{"e1", "web.test", "web", 0, -3600}}, map[string]time.Time{"web.test": now.Add(-time.Hour)}},
		{"bounded", []report{{"e1", "web.test", "web", 0, math.Inf(1)}, {"e2", "api.test", "web", 0, 1e300}, {"e1", "old.test", "web", 0, math.Inf(-1)}},
			map[string]time.Time{"web.test": now.Add(maxCertLeft), "api.test": now.Add(maxCertLeft), "old.test": now.Add(-maxCertLeft)}},
	} {
		var c certsSeen
		for _, r := range tc.reports {
			c.note(r.node, r.host, r.app, now.Add(-r.ago), r.left)
		}
		got := c.certs(now, func(n string) bool { return n != "n1" }, func(a string) bool { return a == "web" })
		if len(got) != len(tc.want) {
			t.Errorf("%s: %+v, want %v", tc.name, got, tc.want)
			continue
		}
		for i, g := range got {
			if w, ok := tc.want[g.Name]; !ok || !g.NotAfter.Equal(w) || g.App != "web" || i > 0 && got[i-1].Name >= g.Name {
				t.Errorf("%s: %+v, want %v", tc.name, got, tc.want)
			}
		}
		if again := c.certs(now, func(string) bool { return true }, func(string) bool { return true }); len(again) != len(tc.want) {
			t.Errorf("%s: what did not count is not forgotten: %+v", tc.name, again)
		}
	}
}

// sinkResult is a MetricsSink answering err.
type sinkResult struct{ err error }

func (s sinkResult) Ingest(string, nodeapi.MetricsRecord) error { return s.err }

// TestCertSinkNotes: what the puller ingests is noted per edge for hosts
// an app names only, and only when the archive took the record (not one
// refused whole).
func TestCertSinkNotes(t *testing.T) {
	m := &Master{}
	m.metricsIndex.read = time.Now().Add(time.Hour) // no database read
	m.metricsIndex.hosts = map[string]string{"web.test": "shop.web"}
	now := time.Now()
	group := func(host string, left float64) nodeapi.MetricsGroup {
		v := make([]float64, len(nodeapi.RouteFields))
		for i := range v {
			v[i] = math.NaN()
		}
		v[len(v)-1] = left
		return nodeapi.MetricsGroup{Kind: nodeapi.GroupRoute, Name: host, Values: v}
	}
	rec := nodeapi.MetricsRecord{Time: now, Groups: []nodeapi.MetricsGroup{group("web.test", 3600), group("evil.test", 60)}}
	if err := (certSink{sinkResult{errs.Invalid("time", "ahead")}, m}).Ingest("e1", rec); err == nil {
		t.Fatal("the archive's refusal is not returned")
	}
	if n := len(m.alerts.certs.hosts); n != 0 {
		t.Errorf("a record refused whole noted %d hosts", n)
	}
	if err := (certSink{sinkResult{errs.ErrForbidden}, m}).Ingest("e1", rec); err == nil {
		t.Fatal("the archive's partial refusal is not returned")
	}
	got := m.alerts.certs.certs(now, func(n string) bool { return n == "e1" }, func(a string) bool { return a == "shop.web" })
	if len(got) != 1 || got[0] != (alert.Cert{Name: "web.test", App: "shop.web", NotAfter: now.Add(time.Hour)}) {
		t.Errorf("noted %+v; want web.test of shop.web alone, in an hour", got)
	}
}

// TestCertAlertFromSamples: the master's evaluation on synthetic route
// samples — two edges serve web.test, one's certificate expires in 10
// days (< 14): cert-expiring fires naming the app and the host, on the
// soonest; a node that is no edge saying 1 day changes nothing; a
// renewed certificate resolves it.
func TestCertAlertFromSamples(t *testing.T) {
	ctx := context.Background()
	m := alertsMaster(t)
	t0 := time.Now().Add(-time.Minute)
	up := view{state: sshx.Up, since: t0.Add(-time.Hour), synced: true}
	w := &world{now: t0,
		nodes: map[string]store.Node{"e1": {Name: "e1", Info: store.NodeInfo{Edge: true}}, "e2": {Name: "e2", Info: store.NodeInfo{Edge: true}}, "n3": {Name: "n3"}},
		views: map[string]view{"e1": up, "e2": up, "n3": up},
		apps:  []appState{{App: store.App{Name: "web", Revision: 1}, rev: store.Revision{Status: store.StatusDeployed}}},
	}
	route := func(node string, days float64) masterapi.Latest {
		l := masterapi.Latest{Kind: masterapi.MetricsRoute, Name: "web.test", Node: node, App: "web", Time: t0}
		for _, f := range nodeapi.RouteFields {
			v := math.NaN()
			if f.Name == "cert_expiry" {
				v = days * 24 * 3600
			}
			l.Values = append(l.Values, masterapi.Value(v))
		}
		return l
	}
	active := func() []masterapi.Alert {
		t.Helper()
		list, err := m.Alerts(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		return list.Active
	}

	m.judgeAlerts(ctx, m.alertSnapshot(w, []masterapi.Latest{route("e1", 60), route("n3", 1)}))
	if a := active(); len(a) != 0 {
		t.Fatalf("alerts %+v; want none (60 days; n3 is no edge)", a)
	}
	m.judgeAlerts(ctx, m.alertSnapshot(w, []masterapi.Latest{route("e2", 10)}))
	a := active()
	if len(a) != 1 || a[0].Key != "cert-expiring/web.test" || a[0].App != "web" || a[0].Value != 10 {
		t.Fatalf("alerts %+v; want cert-expiring/web.test of web, 10 days", a)
	}
	t.Logf("%s", a[0].Summary)
	w.now = t0.Add(time.Second)
	m.judgeAlerts(ctx, m.alertSnapshot(w, []masterapi.Latest{func() masterapi.Latest { l := route("e2", 90); l.Time = w.now; return l }()}))
	if a := active(); len(a) != 0 {
		t.Fatalf("alerts %+v; want none once e2's certificate is renewed", a)
	}
}

// FuzzCertNotAfter: any cert_expiry a node sends is NaN (none) or an
// expiry within maxCertLeft of its sample's time; never a panic, never a
// wrapped time.
func FuzzCertNotAfter(f *testing.F) {
	for _, v := range []float64{0, -1, 86400 * 10, math.NaN(), math.Inf(1), math.Inf(-1), 1e300, -1e300, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		f.Add(v)
	}
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, left float64) {
		got, ok := certNotAfter(at, left)
		if ok == math.IsNaN(left) {
			t.Fatalf("%v: ok %v", left, ok)
		}
		if ok && (got.Before(at.Add(-maxCertLeft)) || got.After(at.Add(maxCertLeft)) || (left > 0) != got.After(at) && math.Abs(left) >= 1e-9) {
			t.Fatalf("%v: %v, not within %v of %v on its side", left, got, maxCertLeft, at)
		}
	})
}
