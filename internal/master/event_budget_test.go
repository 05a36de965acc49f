package master

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func TestEventBudget(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var b eventBudget
	for i := range reportEventBurst {
		if ok, d := b.take(t0); !ok || d != 0 {
			t.Fatalf("take %d of the burst: %t %d", i, ok, d)
		}
	}
	steps := []struct {
		at      time.Duration
		ok      bool
		dropped int
	}{
		{0, false, 1},                      // the burst spent
		{0, false, 2},                      // still
		{500 * time.Millisecond, false, 3}, // half a token
		{time.Second, true, 3},             // one back: taken, the three refused said
		{time.Second, false, 1},
		{-time.Hour, false, 2}, // a clock gone back refills nothing
		{time.Hour, true, 2},   // full again, no more than the burst
	}
	for i, s := range steps {
		ok, d := b.take(t0.Add(s.at))
		if ok != s.ok || d != s.dropped {
			t.Errorf("step %d (%v): %t %d; want %t %d", i, s.at, ok, d, s.ok, s.dropped)
		}
	}
	n := 1 // the last step's
	for ok, _ := b.take(t0.Add(time.Hour)); ok; ok, _ = b.take(t0.Add(time.Hour)) {
		n++
	}
	if n != reportEventBurst {
		t.Errorf("%d taken after an hour; want the burst, %d", n, reportEventBurst)
	}
}

// TestContainerEventsFlood: a node sending its replica's restart count up
// thousands of times records a burst of events, not thousands (the event
// log is every tenant's and keeps only the newest), and reads the
// database no more often.
func TestContainerEventsFlood(t *testing.T) {
	var events, reads int
	a := &agent{name: "n1", log: slog.New(slog.DiscardHandler), deps: &agentDeps{ctx: context.Background(),
		event: func(masterapi.Event) { events++ },
		replica: func(context.Context, string) (store.Replica, bool, error) {
			reads++
			return store.Replica{ID: "web-aaaaaa", App: "web", Node: "n1"}, true, nil
		}}}
	old := nodeapi.Container{ID: "web-aaaaaa"}
	for i := range 5000 {
		c := old
		c.Restarts = i + 1
		a.containerEvents(old, c)
		old = c
	}
	// The test takes well under a second: the burst and perhaps a few.
	if events > reportEventBurst+5 || reads > reportEventBurst+5 {
		t.Errorf("5,000 restarts reported at once: %d events recorded, %d database reads; want about %d", events, reads, reportEventBurst)
	}
	if events < reportEventBurst {
		t.Errorf("%d events recorded; want the burst, %d", events, reportEventBurst)
	}
}
