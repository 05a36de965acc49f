// Package alert decides which alerts fire: pure rules over a snapshot of
// the cluster (nodes, replicas, apps, the newest metric samples,
// certificates) and the alerts of the evaluation before. No clock, no
// I/O: the master takes the snapshot, keeps the alerts, and delivers the
// notices (internal/master/alerts.go).
//
// Each rule names conditions at one of two levels: Fire (the value is past
// the rule's threshold) or Hold (past a lower one). A condition at Fire
// makes an alert pending, and firing once it has held for the rule's For;
// one at Hold keeps a firing alert firing but lets a pending one go; a
// condition gone resolves its alert. The gap between the two levels is
// the hysteresis that keeps a value hovering at a threshold from flapping.
// A thing whose state is not known now (its node unreachable, its sample
// stale) keeps its alert as it was: a master just restarted, or a node
// away, resolves nothing it cannot see.
package alert

import (
	"slices"
	"strings"
	"time"
)

// Severity says how urgent an alert is.
type Severity string

// Severities.
const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
)

// Rule names.
const (
	NodeDown        = "node-down"
	CrashLoop       = "crash-loop"
	Restarts        = "restarts"
	OOMKill         = "oom-kill"
	DiskFull        = "disk-full"
	MemoryNearLimit = "memory-near-limit"
	FailedDeploy    = "failed-deploy"
	CertExpiring    = "cert-expiring"
)

// Alert is one alert, pending or firing.
type Alert struct {
	Rule     string
	Key      string // Rule + "/" + the thing: a node, app, replica or certificate
	Severity Severity
	Summary  string
	Node     string
	App      string
	Replica  string
	Value    float64
	Since    time.Time // when the condition began (as first seen)
	Firing   bool      // false: pending, not yet held for the rule's For
}

// Level is how far past its thresholds a condition is.
type Level int

// Levels.
const (
	Unknown Level = iota + 1 // not known now (node unreachable, no fresh sample): an alert stays as it was
	Hold                     // past the lower threshold: keeps a firing alert
	Fire                     // past the threshold: fires (after For)
)

// condition is what a rule found about one thing.
type condition struct {
	Alert
	level Level
	// forTime: how long it must hold at Fire before the alert fires.
	forTime time.Duration
}

// Evaluate returns the alerts the snapshot gives, pending and firing,
// sorted by key, given the alerts of the evaluation before. An alert
// keeps the Since of the one before it of the same key.
func Evaluate(s Snapshot, prev []Alert) []Alert {
	before := map[string]Alert{}
	for _, a := range prev {
		before[a.Key] = a
	}
	var out []Alert
	for _, c := range conditions(s) {
		p, had := before[c.Key]
		switch {
		case c.level == Unknown:
			if had {
				out = append(out, p)
			}
			continue
		case c.level == Hold && !(had && p.Firing):
			continue // only keeps what fired
		case had:
			c.Since = p.Since
			c.Firing = p.Firing
		case c.Since.IsZero() || c.Since.After(s.Now):
			c.Since = s.Now
		}
		if !c.Firing && c.level == Fire && s.Now.Sub(c.Since) >= c.forTime {
			c.Firing = true
		}
		out = append(out, c.Alert)
	}
	slices.SortFunc(out, func(a, b Alert) int { return strings.Compare(a.Key, b.Key) })
	return slices.CompactFunc(out, func(a, b Alert) bool { return a.Key == b.Key })
}

// conditions runs every rule.
func conditions(s Snapshot) []condition {
	var out []condition
	for _, rule := range []func(Snapshot) []condition{nodeDown, crashLoop, restarts, oomKill, diskFull, memoryNearLimit, failedDeploy, certExpiring} {
		out = append(out, rule(s)...)
	}
	return out
}

// Changes compares two evaluations: the alerts that began firing, and
// the firing ones that resolved (gone, or no longer firing).
func Changes(prev, next []Alert) (fired, resolved []Alert) {
	firing := func(as []Alert) map[string]Alert {
		m := map[string]Alert{}
		for _, a := range as {
			if a.Firing {
				m[a.Key] = a
			}
		}
		return m
	}
	was, is := firing(prev), firing(next)
	for _, a := range next {
		if _, ok := was[a.Key]; a.Firing && !ok {
			fired = append(fired, a)
		}
	}
	for _, a := range prev {
		if _, ok := is[a.Key]; a.Firing && !ok {
			resolved = append(resolved, a)
		}
	}
	return fired, resolved
}
