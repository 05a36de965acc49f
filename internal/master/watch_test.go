package master_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

// TestProgressPushedToWatchers: twenty clients watch one deploy over the
// master's socket. Each sees it through to deployed, while the master
// computes the progress once per change signal at most, and at most once
// per 50 ms: as for one watcher, where polling cost twenty computations
// every 50 ms.
func TestProgressPushedToWatchers(t *testing.T) {
	const clients = 20
	e := newEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s0, err := progressStats(e)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	r := e.deploy(spec("web", 3))
	last := make([]masterapi.Progress, clients)
	lines := make([]int, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := e.m.Client.Watch(ctx, "web", r.Revision, func(p masterapi.Progress) error {
				last[i] = p
				lines[i]++
				return nil
			})
			if err != nil {
				t.Errorf("watcher %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	s1, err := progressStats(e)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range last {
		if p.Status != "deployed" || p.Ready != 3 {
			t.Errorf("watcher %d ended at %+v after %d lines; want deployed, 3 ready", i, p, lines[i])
		}
	}
	computed, changes := s1.Computed-s0.Computed, s1.Changes-s0.Changes
	polled := int64(clients * elapsed / (50 * time.Millisecond))
	t.Logf("deploy watched by %d clients for %s: progress computed %d times on %d change signals (polling every 50 ms: about %d); lines per watcher %v",
		clients, elapsed.Round(time.Millisecond), computed, changes, polled, lines)
	// One computation when the first client came, then one per signal at
	// most (a few more for a watcher that came after the end, if any).
	if computed > changes+3 {
		t.Errorf("progress computed %d times on %d change signals: not driven by them", computed, changes)
	}
	if limit := int64(elapsed/(50*time.Millisecond)) + 3; computed > limit {
		t.Errorf("progress computed %d times in %s; want at most one per 50 ms (%d) whatever the watchers", computed, elapsed, limit)
	}
	// Nothing is left behind by the watchers that left.
	deadline := time.Now().Add(time.Second)
	for s := s1; s.Watchers != 0 || s.Feeds != 0; s, _ = progressStats(e) {
		if time.Now().After(deadline) {
			t.Fatalf("after every watcher left: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
