package master

import (
	"sync"
	"time"
)

// A node's ring holds at most a couple of days of records, so what a
// node may make the master ingest is bounded too: a burst of a full
// ring's backfill (pullBudgetBurst records), then pullBudgetRate records
// a second, well above what a node makes (one record a sample, a few for
// hundreds of containers, at one sample a second at most). Without it a
// hostile node answering full pages of records forever kept the master
// decoding and ingesting 20 pages a second, about a core.
const (
	pullBudgetBurst = 2 * 2 * 24 * 360 // two rings of 2 × 24 h at 10 s
	pullBudgetRate  = 32.0             // records a second
)

// budgetLimits are a budget's burst and rate (records a second).
type budgetLimits struct{ burst, rate float64 }

// recordBudget is a token bucket of records; it may go below zero (a
// page spends what it held), and then the next page waits until it is
// back to one.
type recordBudget struct {
	mu      sync.Mutex
	started bool
	tokens  float64
	at      time.Time
}

func (b *recordBudget) refill(now time.Time, l budgetLimits) {
	if !b.started {
		b.started, b.tokens, b.at = true, l.burst, now
	}
	if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
		b.at = now
	}
}

// wait is how long to wait at now before the next page may be asked for.
func (b *recordBudget) wait(now time.Time, l budgetLimits) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now, l)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// spend takes n records at now.
func (b *recordBudget) spend(now time.Time, n int, l budgetLimits) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now, l)
	b.tokens -= float64(n)
}
