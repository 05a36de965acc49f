package master

import (
	"sync"
	"time"
	"unicode/utf8"
)

// The events a node's own reports make (restarts, OOM kills) are recorded
// within a budget per node: a node's event stream is not trusted, and
// without one a node sending the same replica's restart count up
// thousands of times a second would fill the event log, which every
// tenant shares and which keeps only the newest store.MaxEvents, wiping
// everyone's history, and cost a database read each. A burst of
// reportEventBurst goes through at once (a node whose replicas all crash
// together), then reportEventRate a second; what is over is counted and
// logged.
const (
	reportEventBurst = 60
	reportEventRate  = 1.0 // per second
)

// eventBudget is a token bucket; its zero value is full.
type eventBudget struct {
	mu      sync.Mutex
	started bool
	tokens  float64
	at      time.Time
	dropped int // refused since the last taken
}

// take spends one event at now: true and how many were refused since
// the last one taken; or false (over budget) and how many have been
// refused since, this one included.
func (b *eventBudget) take(now time.Time) (ok bool, dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started {
		b.started, b.tokens, b.at = true, reportEventBurst, now
	}
	if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.tokens = min(reportEventBurst, b.tokens+dt*reportEventRate)
		b.at = now
	}
	if b.tokens < 1 {
		b.dropped++
		return false, b.dropped
	}
	b.tokens--
	dropped, b.dropped = b.dropped, 0
	return true, dropped
}

// maxEventMessage bounds an event's message: some carry what a node said
// (the signal a container died of), and a node's word has no length.
const maxEventMessage = 1024

// boundMessage cuts a message to maxEventMessage bytes, on a character's
// boundary, marked with "…". Pure.
func boundMessage(s string) string {
	if len(s) <= maxEventMessage {
		return s
	}
	cut := maxEventMessage - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
