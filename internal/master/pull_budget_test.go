package master

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

func TestRecordBudget(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	l := budgetLimits{burst: 512, rate: 100}
	var b recordBudget
	steps := []struct {
		at    time.Duration
		spend int
		wait  time.Duration // before spending
	}{
		{0, 256, 0},                     // a full burst: no wait
		{0, 256, 0},                     // 256 left
		{0, 256, 10 * time.Millisecond}, // 0 left: a hundredth of a second for one
		{10 * time.Millisecond, 0, 2560 * time.Millisecond}, // -256, then one back: 256 more at 100/s
		{3 * time.Second, 0, 0},
		{time.Hour, 600, 0},                     // refilled to the burst, no more
		{time.Hour, 0, 890 * time.Millisecond},  // -88: 89 records
		{-time.Hour, 0, 890 * time.Millisecond}, // a clock set back refills nothing
	}
	for i, s := range steps {
		if w := b.wait(t0.Add(s.at), l); w.Round(time.Millisecond) != s.wait {
			t.Errorf("step %d at %v: wait %v; want %v", i, s.at, w, s.wait)
		}
		b.spend(t0.Add(s.at), s.spend, l)
	}
}

// TestPullerRecordBudget: a node answering full pages forever (a hostile
// one: a real ring holds a couple of days) gets its burst at the pace of
// pages, then no more than the budget's rate.
func TestPullerRecordBudget(t *testing.T) {
	ring := newFakeRing()
	const n = 3000
	for s := uint64(1); s <= n; s++ {
		ring.add(record(t, pullT0.Add(time.Duration(s)*10*time.Second), "node", "web-1"))
	}
	srv := httptest.NewServer(ring)
	defer srv.Close()
	sink := &testSink{}
	p := &puller{node: "n1", http: &http.Client{Transport: rewrite{srv.URL}}, sink: sink, stats: &pullStats{},
		log:   slog.New(slog.DiscardHandler),
		load:  func(context.Context) (uint64, error) { return 0, nil },
		save:  func(context.Context, uint64, bool) error { return nil },
		event: func(masterapi.Event) {},
		burst: 300, rate: 1000}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); p.run(ctx) }()
	pt := &pullTest{p: p}
	pt.waitCursor(t, n)
	took := time.Since(start)
	cancel()
	<-done
	// 20 pages of 256 a second would take 0.6 s; the budget lets 300
	// through at once, then 1,000 a second (less the last page's 256
	// spent before it waits).
	if least := time.Duration(float64(n-300-256) / 1000 * float64(time.Second)); took < least {
		t.Errorf("%d records pulled in %v; the budget allows no less than %v", n, took, least)
	}
	if got := len(sink.records()); got != n {
		t.Errorf("%d records ingested; want %d", got, n)
	}
}
