package broadcast

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestPublishCoalesces: changes published while nobody looks are one
// wake-up, and the generation counts them all.
func TestPublishCoalesces(t *testing.T) {
	var s Signal
	if gen := s.Load(); gen != 0 {
		t.Fatalf("zero Signal at generation %d", gen)
	}
	s.Publish() // nobody waits: nothing to wake, and nothing queued
	gen, ch := s.Gen()
	if gen != 1 || closed(ch) {
		t.Fatalf("after one publish: generation %d, closed %t; want 1, open", gen, closed(ch))
	}
	for range 3 {
		s.Publish()
	}
	if !closed(ch) {
		t.Fatal("three publishes did not close the channel")
	}
	gen, ch2 := s.Gen()
	if gen != 4 || closed(ch2) {
		t.Errorf("after three more: generation %d, closed %t; want 4, a new open channel", gen, closed(ch2))
	}
}

// TestNoLostWakeup: a change published between reading the generation
// and waiting wakes the waiter at once.
func TestNoLostWakeup(t *testing.T) {
	var s Signal
	gen, ch := s.Gen()
	s.Publish() // after the check, before the wait
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("a change published between check and wait was lost")
	}
	got, err := s.Wait(context.Background(), gen)
	if err != nil || got != gen+1 {
		t.Errorf("Wait(%d) = %d, %v; want %d at once", gen, got, err, gen+1)
	}
}

// TestWaitReturnsWhenPast: Wait does not block when the generation is
// already past the one seen, and blocks until a publish otherwise.
func TestWaitReturnsWhenPast(t *testing.T) {
	var s Signal
	s.Publish()
	s.Publish()
	for _, seen := range []uint64{0, 1} {
		if got, err := s.Wait(context.Background(), seen); err != nil || got != 2 {
			t.Errorf("Wait(%d) = %d, %v; want 2", seen, got, err)
		}
	}
	done := make(chan uint64)
	go func() {
		got, _ := s.Wait(context.Background(), 2)
		done <- got
	}()
	select {
	case got := <-done:
		t.Fatalf("Wait(2) returned %d before anything was published", got)
	case <-time.After(50 * time.Millisecond):
	}
	s.Publish()
	if got := <-done; got != 3 {
		t.Errorf("Wait(2) = %d after a publish; want 3", got)
	}
}

// TestWaitCancelled: a waiter whose context ends returns its error, and
// the next publish is not disturbed by the waiter that left.
func TestWaitCancelled(t *testing.T) {
	var s Signal
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := s.Wait(ctx, 0)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Wait after cancel: %v; want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("a cancelled waiter was not woken")
	}
	s.Publish()
	if gen := s.Load(); gen != 1 {
		t.Errorf("generation %d after one publish; want 1", gen)
	}
}

// TestOnePublishWakesAll: every waiter wakes on one publish, and the
// publisher does not wait for any of them.
func TestOnePublishWakesAll(t *testing.T) {
	var s Signal
	const waiters = 100
	var started, woke sync.WaitGroup
	started.Add(waiters)
	woke.Add(waiters)
	for range waiters {
		go func() {
			_, ch := s.Gen()
			started.Done()
			<-ch // and never reads anything else: a slow waiter
			woke.Done()
		}()
	}
	started.Wait()
	t0 := time.Now()
	s.Publish()
	if d := time.Since(t0); d > 100*time.Millisecond {
		t.Errorf("Publish took %s with %d waiters", d, waiters)
	}
	woke.Wait()
}

// TestConcurrent: publishers and waiters at once (run with -race); every
// waiter sees the last generation.
func TestConcurrent(t *testing.T) {
	var s Signal
	const publishers, each, waiters = 4, 1000, 8
	var wg sync.WaitGroup
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seen uint64
			for seen < publishers*each {
				gen, err := s.Wait(context.Background(), seen)
				if err != nil || gen <= seen {
					t.Errorf("Wait(%d) = %d, %v", seen, gen, err)
					return
				}
				seen = gen
			}
		}()
	}
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				s.Publish()
			}
		}()
	}
	wg.Wait()
}
