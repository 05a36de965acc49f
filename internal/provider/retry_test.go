package provider

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	p := Policy{Attempts: 4, Base: time.Second, Max: 10 * time.Second}
	cases := []struct {
		name    string
		attempt int
		err     error
		jitter  float64
		wait    time.Duration
		again   bool
	}{
		{"rate limit waits what was asked", 0, &RateLimited{RetryAfter: 3 * time.Second}, 0.9, 3 * time.Second, true},
		{"rate limit capped", 0, &RateLimited{RetryAfter: time.Hour}, 0, 10 * time.Second, true},
		{"server error, first", 0, fmt.Errorf("x: %w", ErrTemporary), 0, 500 * time.Millisecond, true},
		{"server error, jitter top", 0, ErrTemporary, 1, time.Second, true},
		{"server error grows", 2, ErrTemporary, 1, 4 * time.Second, true},
		{"server error capped", 2, ErrTemporary, 1, 4 * time.Second, true},
		{"attempts spent", 3, ErrTemporary, 0, 0, false},
		{"capacity is final here", 0, ErrCapacity, 0, 0, false},
		{"not found is final", 0, ErrNotFound, 0, 0, false},
		{"auth is final", 0, ErrAuth, 0, 0, false},
		{"plain error is final", 0, errors.New("bad request"), 0, 0, false},
	}
	for _, c := range cases {
		wait, again := p.Backoff(c.attempt, c.err, c.jitter)
		if wait != c.wait || again != c.again {
			t.Errorf("%s: got %s %v, want %s %v", c.name, wait, again, c.wait, c.again)
		}
	}
	big := Policy{Attempts: 100, Base: time.Second, Max: 30 * time.Second}
	if w, _ := big.Backoff(60, ErrTemporary, 1); w != 30*time.Second {
		t.Errorf("overflowing shift: waited %s, want the 30 s cap", w)
	}
}

func TestDo(t *testing.T) {
	p := Policy{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond}
	calls := 0
	err := p.Do(context.Background(), "create", func(context.Context) error {
		calls++
		if calls < 3 {
			return ErrTemporary
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("got %v after %d calls, want success after 3", err, calls)
	}
	calls = 0
	err = p.Do(context.Background(), "create", func(context.Context) error { calls++; return ErrTemporary })
	if !errors.Is(err, ErrTemporary) || calls != 3 {
		t.Fatalf("got %v after %d calls, want ErrTemporary after 3", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := Policy{Attempts: 3, Base: time.Hour, Max: time.Hour}
	if err := slow.Do(ctx, "create", func(context.Context) error { return ErrTemporary }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v", err)
	}
}
