package master

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatcloud/moat/internal/master/broadcast"
	"github.com/moatcloud/moat/internal/masterapi"
)

// Clients following a rollout (moat deploy, scale, rollback) are told of
// changes rather than polling for them. The master publishes a signal
// when anything a rollout's progress depends on may have changed
// (progressChanged: after a reconcile pass woken by a node event, an
// operation's end or a request, or that changed something; when a
// revision's message changes). One feed per watched revision computes
// its progress again on that signal, at most once per progressEvery
// however many signals come and however many clients watch, and hands
// each new value to all of them.

const (
	progressEvery  = 50 * time.Millisecond  // at most one computation per watched revision this often
	transfersEvery = 250 * time.Millisecond // how often a feed reads its image's transfers
)

// feeds are the watched revisions, and the signal that their progress may
// have changed.
type feeds struct {
	changes  broadcast.Signal
	computed atomic.Int64 // progress computed from a look at the whole state

	mu       sync.Mutex
	byKey    map[feedKey]*feed
	watchers int64
}

type feedKey struct {
	app string
	rev int
}

// feed is one revision's progress, computed for every client watching it.
type feed struct {
	key      feedKey
	watchers int // feeds.mu
	stop     context.CancelFunc
	updated  broadcast.Signal // a new value is out

	mu        sync.Mutex
	p         masterapi.Progress
	err       error
	done      bool // the rollout is over, or computing failed: no more values
	published bool
}

// progressChanged says something a rollout's progress depends on may
// have changed: watched revisions' progress is computed again. It never
// waits.
func (m *Master) progressChanged() { m.feeds.changes.Publish() }

// WatchProgress calls fn with a revision's progress, and again with each
// change, until the rollout is over (fn has seen a terminal status), ctx
// ends (its error), fn fails (fn's error) or the progress cannot be
// computed (that error).
func (m *Master) WatchProgress(ctx context.Context, app string, rev int, fn func(masterapi.Progress) error) error {
	f := m.joinFeed(appKey(ctx, app), rev)
	defer m.leaveFeed(f)
	var seen uint64
	for {
		gen, err := f.updated.Wait(ctx, seen)
		if err != nil {
			return err
		}
		seen = gen
		p, done, err := f.value()
		if err != nil {
			return err
		}
		p.App = appName(p.App)
		if err := fn(p); err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// ProgressStats counts the watchers and the work done for them.
func (m *Master) ProgressStats() masterapi.ProgressStats {
	m.feeds.mu.Lock()
	defer m.feeds.mu.Unlock()
	return masterapi.ProgressStats{Watchers: m.feeds.watchers, Feeds: int64(len(m.feeds.byKey)),
		Changes: int64(m.feeds.changes.Load()), Computed: m.feeds.computed.Load()}
}

// joinFeed returns the revision's feed, started for this first watcher or
// shared with the others.
func (m *Master) joinFeed(app string, rev int) *feed {
	m.feeds.mu.Lock()
	defer m.feeds.mu.Unlock()
	key := feedKey{app, rev}
	f := m.feeds.byKey[key]
	if f == nil {
		ctx, cancel := context.WithCancel(m.ctx)
		f = &feed{key: key, stop: cancel}
		if m.feeds.byKey == nil {
			m.feeds.byKey = map[feedKey]*feed{}
		}
		m.feeds.byKey[key] = f
		go m.runFeed(ctx, f)
	}
	f.watchers++
	m.feeds.watchers++
	return f
}

// leaveFeed stops the feed when its last watcher leaves.
func (m *Master) leaveFeed(f *feed) {
	m.feeds.mu.Lock()
	defer m.feeds.mu.Unlock()
	m.feeds.watchers--
	if f.watchers--; f.watchers == 0 {
		f.stop()
		m.dropFeed(f)
	}
}

// dropFeed forgets a feed, so that the next watcher of its revision
// starts another. feeds.mu held.
func (m *Master) dropFeed(f *feed) {
	if m.feeds.byKey[f.key] == f {
		delete(m.feeds.byKey, f.key)
	}
}

// runFeed computes a watched revision's progress, then again each time
// it may have changed, until the rollout is over or nobody watches. In
// between, it reads the transfers of the revision's image, whose byte
// counts move without a signal.
func (m *Master) runFeed(ctx context.Context, f *feed) {
	tick := time.NewTicker(transfersEvery)
	defer tick.Stop()
	for {
		// The generation before the look: a change published during it
		// is not missed.
		_, changed := m.feeds.changes.Gen()
		began := time.Now()
		p, image, err := m.rolloutProgress(ctx, f.key.app, f.key.rev)
		if ctx.Err() != nil {
			return // nobody watches any more
		}
		if err != nil || p.Terminal() {
			m.endFeed(f, m.withTransfers(p, image), err)
			return
		}
		f.set(m.withTransfers(p, image), nil, false)
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				waiting = false
			case <-tick.C:
				f.set(m.withTransfers(p, image), nil, false)
			}
		}
		// However many signals came meanwhile: one computation.
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(began.Add(progressEvery))):
		}
	}
}

// endFeed hands out a feed's last value and forgets it: a later watcher
// of the revision (after moat promote, say) computes afresh.
func (m *Master) endFeed(f *feed, p masterapi.Progress, err error) {
	f.set(p, err, true)
	m.feeds.mu.Lock()
	m.dropFeed(f)
	m.feeds.mu.Unlock()
}

// set records the feed's value and tells its watchers, if it is new.
func (f *feed) set(p masterapi.Progress, err error, done bool) {
	f.mu.Lock()
	news := !f.published || done || !reflect.DeepEqual(p, f.p)
	f.p, f.err, f.done, f.published = p, err, done, true
	f.mu.Unlock()
	if news {
		f.updated.Publish()
	}
}

func (f *feed) value() (masterapi.Progress, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.p, f.done, f.err
}
