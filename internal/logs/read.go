package logs

import (
	"context"
	"time"
)

// ReadOptions selects what Read emits.
type ReadOptions struct {
	Tail   int             // last N entries only; <0 means all
	Since  time.Time       // entries at or after this time only; zero means all
	Follow bool            // after the existing entries, keep emitting new ones
	Stop   <-chan struct{} // when closed (the container exited and its shim finished), a follower drains what is left and returns nil
}

// pollInterval is how often a follower looks for new records even without a
// change notification, in case one was missed or inotify is unavailable.
const pollInterval = time.Second

// Read emits entries from dir oldest first across rotated files, then follows
// if asked, until ctx is done (returns ctx.Err()) or Stop is closed. emit
// returning an error stops Read with that error. Malformed lines are skipped.
// Tail and Since select among the entries present when Read starts; entries
// that arrive while following are filtered by Since only.
func Read(ctx context.Context, dir string, opts ReadOptions, emit func(Entry) error) error {
	var w *watcher
	if opts.Follow {
		// Without inotify the follower still polls; better late than failing.
		if w, _ = watchDir(dir); w != nil {
			defer w.close()
		}
	}
	c := &cursor{dir: dir}
	defer c.close()

	out := sinceFilter(opts.Since, emit)
	if opts.Tail >= 0 {
		r := newRing(opts.Tail)
		if err := c.catchUp(ctx, sinceFilter(opts.Since, r.push)); err != nil {
			return err
		}
		if err := r.emit(emit); err != nil {
			return err
		}
	} else if err := c.catchUp(ctx, out); err != nil {
		return err
	}
	if !opts.Follow {
		return nil
	}
	return follow(ctx, c, w, opts.Stop, out)
}

// sinceFilter passes on to next the entries at or after t.
func sinceFilter(t time.Time, next func(Entry) error) func(Entry) error {
	if t.IsZero() {
		return next
	}
	return func(e Entry) error {
		if e.Time.Before(t) {
			return nil
		}
		return next(e)
	}
}

// follow emits records as they arrive until ctx is done or stop is closed.
func follow(ctx context.Context, c *cursor, w *watcher, stop <-chan struct{}, emit func(Entry) error) error {
	var wake <-chan struct{}
	if w != nil {
		wake = w.wake
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if err := c.catchUp(ctx, emit); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return c.catchUp(ctx, emit)
		case <-wake:
		case <-tick.C:
		}
	}
}
