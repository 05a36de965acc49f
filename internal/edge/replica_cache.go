package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Several edges serving one name must hold the same certificate, and any
// of them may be the one the CA asks for a challenge another ordered. So
// the edges of a cluster share one cache key (the operator installs it,
// never the master) and each change to an edge's cache goes to the
// others through the master, sealed: the master keeps and forwards bytes
// it cannot open, under the name's hash, and an edge keeps only what
// opens with the shared key for that hash (Cache.Install).
//
// The node never calls the master: it keeps an Outbox of its changes,
// which the master pulls (Next, a long poll); the master's next pull says
// which changes it has delivered to every other edge (its acked mark).

// ChallengeWait bounds how long a challenge's Put waits for the master
// to say every edge has it. The CA validates once Put returns; after
// this long the edge goes on anyway (an edge down, the master slow): the
// CA may then ask an edge without it, and the order is tried again later.
const ChallengeWait = 15 * time.Second

// pollerGone: an Outbox nobody has pulled for this long has no master
// carrying it, and its challenges are not waited for (an edge alone, or
// its master away, works as a single edge does).
const pollerGone = 30 * time.Second

// maxOutbox bounds the changes an outbox holds (one per name).
const maxOutbox = 4096

// OutboxEntry is one change of an edge's cache on its way to the others:
// a name's hash and its sealed entry, or its sealed deletion (IsDeletion).
// Seq orders changes; only the latest change of a hash is kept.
type OutboxEntry struct {
	Seq       uint64
	Hash      string
	Data      []byte
	Challenge bool
	// Claim: an edge's claim to order a name's certificate (claim.go),
	// which the master arbitrates: first come, first served.
	Claim bool
}

// Outbox holds an edge's cache changes until the master acknowledges
// them. The zero value is not usable: NewOutbox.
type Outbox struct {
	log   *slog.Logger
	now   func() time.Time
	epoch string // this outbox's: a pull acknowledging another's acknowledges nothing

	mu       sync.Mutex
	seq      uint64
	acked    uint64
	entries  []OutboxEntry // by Seq, one per hash
	polling  int           // long polls under way
	lastPoll time.Time
	wake     chan struct{} // closed on any change; replaced
}

// NewOutbox makes an empty outbox and has c hand its changes to it.
func NewOutbox(c *Cache, log *slog.Logger) *Outbox {
	var b [8]byte
	rand.Read(b[:])
	o := &Outbox{log: log, now: time.Now, epoch: hex.EncodeToString(b[:]), wake: make(chan struct{})}
	c.out = o
	return o
}

// Epoch names this outbox, made anew each time the daemon starts: the
// master's acknowledgments count only for the outbox it pulled them from,
// since sequence numbers start again with each.
func (o *Outbox) Epoch() string { return o.epoch }

func (o *Outbox) changed() {
	close(o.wake)
	o.wake = make(chan struct{})
}

// Put records a change. A challenge's Put then waits, up to ChallengeWait
// or ctx, until the master acknowledges it, if a master is pulling.
func (o *Outbox) Put(ctx context.Context, hash string, data []byte, challenge bool) {
	o.put(ctx, OutboxEntry{Hash: hash, Data: data, Challenge: challenge})
}

// carried says whether a master pulls the outbox (now, or lately).
func (o *Outbox) carried() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.polling > 0 || o.now().Sub(o.lastPoll) < pollerGone
}

func (o *Outbox) put(ctx context.Context, e OutboxEntry) {
	challenge, hash := e.Challenge || e.Claim, e.Hash
	o.mu.Lock()
	o.seq++
	seq := o.seq
	e.Seq = seq
	o.entries = slices.DeleteFunc(o.entries, func(e OutboxEntry) bool { return e.Hash == hash })
	o.entries = append(o.entries, e)
	if len(o.entries) > maxOutbox {
		// Nobody has pulled for long (each order adds a challenge's
		// name): the oldest changes go; the master's catch-up and later
		// writes make up for them.
		o.log.Warn("edge cache outbox full: its oldest changes are dropped", "dropped", len(o.entries)-maxOutbox)
		o.entries = slices.Delete(o.entries, 0, len(o.entries)-maxOutbox)
	}
	o.changed()
	carried := o.polling > 0 || o.now().Sub(o.lastPoll) < pollerGone
	o.mu.Unlock()
	if !challenge || !carried {
		return
	}
	t0 := o.now()
	ctx, cancel := context.WithTimeout(ctx, ChallengeWait)
	defer cancel()
	if err := o.waitAcked(ctx, seq); err != nil {
		o.log.Warn("a challenge or claim did not reach every edge in time", "claim", e.Claim, "waited", o.now().Sub(t0).Round(time.Millisecond), "err", err)
		return
	}
	if e.Claim {
		o.log.Info("claim to order arbitrated", "took", o.now().Sub(t0).Round(time.Microsecond))
		return
	}
	o.log.Info("challenge on every edge", "took", o.now().Sub(t0).Round(time.Microsecond))
}

func (o *Outbox) waitAcked(ctx context.Context, seq uint64) error {
	for {
		o.mu.Lock()
		done, wake := o.acked >= seq, o.wake
		o.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pending says whether a change of hash awaits acknowledgment.
func (o *Outbox) pending(hash string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.ContainsFunc(o.entries, func(e OutboxEntry) bool { return e.Hash == hash })
}

// Next is the master's pull: it first takes acked as the master's word
// that every change up to it reached the other edges, then returns the
// changes after it, waiting up to wait (or ctx) for one if there are
// none.
func (o *Outbox) Next(ctx context.Context, acked uint64, wait time.Duration) []OutboxEntry {
	o.mu.Lock()
	o.polling++
	o.lastPoll = o.now()
	if acked > o.seq {
		acked = o.seq // an ack of changes never made: a confused caller
	}
	if acked > o.acked {
		o.acked = acked
		o.entries = slices.DeleteFunc(o.entries, func(e OutboxEntry) bool { return e.Seq <= acked })
		o.changed()
	}
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.polling--
		o.lastPoll = o.now()
		o.mu.Unlock()
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		o.mu.Lock()
		out, wake := slices.Clone(o.entries), o.wake
		o.mu.Unlock()
		if len(out) > 0 {
			return out
		}
		select {
		case <-wake:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
