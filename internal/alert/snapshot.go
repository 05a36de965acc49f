package alert

import (
	"math"
	"time"
)

// Snapshot is what the rules look at.
type Snapshot struct {
	Now      time.Time
	Nodes    []Node
	Replicas []Replica
	Apps     []App
	Certs    []Cert
}

// Node is a node as the master's connection sees it, and its newest
// sample (NaN: not sampled).
type Node struct {
	Name  string
	State string    // up, down, connecting (never up yet)
	Since time.Time // in that state since
	// DiskUsed and DiskTotal (bytes) of the node's state filesystem,
	// sampled at SampledAt.
	DiskUsed, DiskTotal float64
	SampledAt           time.Time
}

// Replica is a replica the master wants running, as its node reports its
// container, and its newest sample.
type Replica struct {
	ID, App, Node string
	// Known: its node is up and has reported its containers; the fields
	// below are the container's then, else unknown.
	Known    bool
	State    string // the container's: created, running, restarting, exited; "" when it has none yet
	Restarts int
	// RestartTimes are when the master saw the replica restart, within
	// the restarts window (TrackRestarts keeps them).
	RestartTimes      []time.Time
	Started, Finished time.Time // the current or last run's start, the last run's end
	OOMKilled         bool      // the last run ended killed for memory
	// Mem and MemLimit (bytes; NaN: not sampled, limit 0: none), sampled
	// at SampledAt.
	Mem, MemLimit float64
	SampledAt     time.Time
}

// App is an app's thresholds and its last deploy.
type App struct {
	Name       string
	Thresholds Thresholds
	// FailedRevision is the revision of the app's last deploy when it
	// failed (0: it did not), FailedAt when the failure was seen, and
	// RolledBackTo the revision it went back to (0: none).
	FailedRevision int
	FailedAt       time.Time
	RolledBackTo   int
}

// Thresholds are an app's own thresholds (the spec's alerts:); zero
// fields take the defaults.
type Thresholds struct {
	MemoryPercent int // memory-near-limit fires past this percent of the limit
	Restarts      int // restarts fires at this many restarts within RestartsWindow
}

// Cert is an ingress certificate the master can read the expiry of.
type Cert struct {
	Name     string // what it is called in alerts: app/secret, or a host
	App      string
	NotAfter time.Time
}

// Defaults and rule timings.
const (
	DefaultMemoryPercent = 90
	DefaultRestarts      = 5
	DiskPercent          = 90
	// Hysteresis: a firing alert on a percentage holds until the value
	// drops this many points below the threshold.
	Hysteresis = 5
	// MemoryFor: memory must stay past the threshold this long (two
	// samples at the nodes' default 10 s) before the alert fires.
	MemoryFor = 10 * time.Second
	// RestartsWindow is what repeated restarts counts over.
	RestartsWindow = time.Hour
	// CrashLoopRestarts: a replica restarting this many times, its last
	// run shorter than StableRun, is crash-looping; it is over once a
	// run lasts CrashLoopClear.
	CrashLoopRestarts = 3
	StableRun         = 10 * time.Second
	CrashLoopClear    = time.Minute
	// NodeUpClear: a node down is over once it has been up this long.
	NodeUpClear = 10 * time.Second
	// OOMWindow: an OOM kill is alerted for this long after it.
	OOMWindow = 10 * time.Minute
	// CertDays: certificates expiring within this many days.
	CertDays = 14
	// StaleSample: samples older than this are not judged (the node's
	// own alert, if down, says more).
	StaleSample = 2 * time.Minute
)

// memoryPercent is the app's memory threshold.
func (t Thresholds) memoryPercent() float64 {
	if t.MemoryPercent > 0 {
		return float64(t.MemoryPercent)
	}
	return DefaultMemoryPercent
}

func (t Thresholds) restarts() int {
	if t.Restarts > 0 {
		return t.Restarts
	}
	return DefaultRestarts
}

// fresh: a sample taken and worth judging.
func fresh(at, now time.Time, values ...float64) bool {
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return !at.IsZero() && now.Sub(at) <= StaleSample
}

// TrackRestarts keeps the restart history of replicas between
// evaluations: seen maps a replica to the restart count last seen and
// the times of the increases within RestartsWindow. A count that grew by
// n adds n times (now); a replica first seen adds none (its old restarts
// are not news); replicas gone are forgotten. Pure: returns the new map.
func TrackRestarts(seen map[string]RestartHistory, reps []Replica, now time.Time) map[string]RestartHistory {
	out := make(map[string]RestartHistory, len(reps))
	for _, r := range reps {
		h, ok := seen[r.ID]
		var times []time.Time
		for _, t := range h.Times {
			if now.Sub(t) < RestartsWindow {
				times = append(times, t)
			}
		}
		if ok {
			for i := h.Count; i < r.Restarts && len(times) < 1000; i++ {
				times = append(times, now)
			}
		}
		out[r.ID] = RestartHistory{Count: r.Restarts, Times: times}
	}
	return out
}

// RestartHistory is one replica's restarts as TrackRestarts keeps them.
type RestartHistory struct {
	Count int
	Times []time.Time
}
