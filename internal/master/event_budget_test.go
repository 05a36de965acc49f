package master

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

func TestBoundMessage(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2,000 bytes
	for _, tt := range []struct {
		in   string
		want int // bytes
	}{{"", 0}, {"restarted (3 in all) after signal SIGKILL", 41}, {strings.Repeat("x", 1024), 1024}, {strings.Repeat("x", 1025), 1024}, {long, 1023}} {
		got := boundMessage(tt.in)
		if len(got) != tt.want || !utf8.ValidString(got) {
			t.Errorf("boundMessage(%d bytes): %d bytes, valid %t; want %d", len(tt.in), len(got), utf8.ValidString(got), tt.want)
		}
	}
}

// TestContainerEventHugeSignal: the signal a node says a container died
// of goes into the event's message, bounded (a node's word has no length,
// and the event log keeps 100,000 events).
func TestContainerEventHugeSignal(t *testing.T) {
	m := &Master{}
	a := &agent{name: "n1", log: slog.New(slog.DiscardHandler), deps: &agentDeps{ctx: context.Background(), event: m.RecordEvent,
		replica: func(context.Context, string) (store.Replica, bool, error) {
			return store.Replica{ID: "web-aaaaaa", App: "web", Node: "n1"}, true, nil
		}}}
	old := nodeapi.Container{ID: "web-aaaaaa"}
	c := old
	c.Restarts, c.Signal = 1, strings.Repeat("SIG", 1<<20)
	a.containerEvents(old, c)
	m.events.mu.Lock()
	defer m.events.mu.Unlock()
	if len(m.events.queue) != 1 || len(m.events.queue[0].Message) > maxEventMessage {
		n := 0
		if len(m.events.queue) > 0 {
			n = len(m.events.queue[0].Message)
		}
		t.Errorf("%d events queued, the first's message %d bytes; want one of at most %d", len(m.events.queue), n, maxEventMessage)
	}
}
