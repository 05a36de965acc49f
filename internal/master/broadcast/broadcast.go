// Package broadcast tells any number of waiters that something changed,
// without the one who says so ever waiting for them: a generation that
// counts changes, and a channel closed when a later generation is
// published. Changes published while a waiter is busy coalesce into one
// wake-up; nothing is queued.
package broadcast

import (
	"context"
	"sync"
)

// Signal is a change signal. The zero value is ready: generation 0,
// nothing published yet.
type Signal struct {
	mu  sync.Mutex
	gen uint64
	ch  chan struct{} // closed by the next Publish; nil while nobody waits
}

// Publish records a change and wakes everyone waiting for one. It costs a
// lock and an increment when nobody waits.
func (s *Signal) Publish() {
	s.mu.Lock()
	s.gen++
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	s.mu.Unlock()
}

// Gen returns the current generation and a channel closed once a later
// one is published. Read both before looking at what the signal is about
// and wait on the channel afterwards: a change published in between is not
// missed.
func (s *Signal) Gen() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.gen, s.ch
}

// Load returns the current generation.
func (s *Signal) Load() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// Wait returns the current generation as soon as it is past seen, or
// ctx's error when ctx ends first.
func (s *Signal) Wait(ctx context.Context, seen uint64) (uint64, error) {
	for {
		gen, changed := s.Gen()
		if gen > seen {
			return gen, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return gen, ctx.Err()
		}
	}
}
