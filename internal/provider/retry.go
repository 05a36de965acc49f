package provider

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy bounds retries of one provider call.
type Policy struct {
	Attempts int           // calls at most, the first included
	Base     time.Duration // first backoff after a server error
	Max      time.Duration // longest single wait
}

// DefaultPolicy: five calls, backoff from 1 s up to 30 s, jittered.
var DefaultPolicy = Policy{Attempts: 5, Base: time.Second, Max: 30 * time.Second}

// Backoff decides whether a failed call is tried again and after how
// long: a rate limit waits what the provider asked (capped at Max), a
// temporary failure waits Base·2^attempt with full jitter (jitter in
// [0,1)), anything else is final. attempt counts from 0 (the first call).
func (p Policy) Backoff(attempt int, err error, jitter float64) (time.Duration, bool) {
	if attempt+1 >= p.Attempts {
		return 0, false
	}
	var rl *RateLimited
	switch {
	case errors.As(err, &rl):
		return min(max(rl.RetryAfter, 0), p.Max), true
	case errors.Is(err, ErrTemporary):
		d := p.Base << min(attempt, 20)
		if d > p.Max || d <= 0 {
			d = p.Max
		}
		return time.Duration(float64(d) * (0.5 + jitter/2)), true
	}
	return 0, false
}

// Do calls f until it succeeds, fails for good, or the policy or the
// context ends it; the error says how many calls were made.
func (p Policy) Do(ctx context.Context, what string, f func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := f(ctx)
		if err == nil {
			return nil
		}
		wait, again := p.Backoff(attempt, err, rand.Float64())
		if !again {
			if attempt > 0 {
				return fmt.Errorf("%s (after %d calls): %w", what, attempt+1, err)
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
	}
}
