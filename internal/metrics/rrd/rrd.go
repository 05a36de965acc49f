// Package rrd consolidates one metric's samples into round-robin archives,
// in the style of MRTG and RRDtool: a few rings of fixed length, each at a
// coarser step than the one before (by default 10 s for 2 days, 1 min for 14
// days, 5 min for 90 days, 1 h for 2 years), each step keeping the average,
// minimum, maximum and number of samples that fell into it.
//
// Why this shape: a series costs the same bytes on its first day and after
// ten years, so the master's disk and memory grow with the number of series
// and never with time; and a graph of a day, a month or a year reads a few
// thousand ready-made points from one archive instead of scanning raw samples.
// Min and max survive consolidation, so a short spike still shows on the year
// view; the count says how much of a step was seen, so a partial step is
// honest and a step nobody sampled is unknown (NaN), never zero.
//
// The package is pure: no clock, no files. The caller feeds samples in time
// order (a backfill after an outage arrives in order too, only later) and
// stores MarshalBinary's fixed-size encoding where it likes.
package rrd

import (
	"fmt"
	"math"
	"time"
)

// Archive is one ring: Rows steps of Step each.
type Archive struct {
	Step time.Duration
	Rows int
}

// Span is how much history the archive holds.
func (a Archive) Span() time.Duration { return a.Step * time.Duration(a.Rows) }

// Spec is a set of archives, finest step first.
type Spec []Archive

// Default is the set the master keeps for every series (issue 14).
var Default = Spec{
	{Step: 10 * time.Second, Rows: 2 * 24 * 360}, // 2 days
	{Step: time.Minute, Rows: 14 * 24 * 60},      // 14 days
	{Step: 5 * time.Minute, Rows: 90 * 24 * 12},  // 90 days
	{Step: time.Hour, Rows: 2 * 365 * 24},        // 2 years
}

// maxRows bounds one archive, so that a spec (or untrusted bytes) cannot ask
// for an absurd allocation.
const (
	maxRows     = 1 << 22
	maxArchives = 16
)

// Validate reports whether the spec can make a series: at least one archive,
// positive steps strictly growing, rows in 1..maxRows.
func (sp Spec) Validate() error {
	if len(sp) == 0 || len(sp) > maxArchives {
		return fmt.Errorf("rrd spec: %d archives, want 1..%d", len(sp), maxArchives)
	}
	for i, a := range sp {
		if a.Step <= 0 || a.Rows <= 0 || a.Rows > maxRows {
			return fmt.Errorf("rrd spec: archive %d: step %v rows %d out of range", i, a.Step, a.Rows)
		}
		if i > 0 && a.Step <= sp[i-1].Step {
			return fmt.Errorf("rrd spec: archive %d: step %v not coarser than %v", i, a.Step, sp[i-1].Step)
		}
	}
	return nil
}

// row is one consolidated step as stored: float32 halves the size of a
// series and is ample for a graph; n saturates at MaxUint16 (an hour at one
// sample a second is 3,600).
type row struct {
	avg, min, max float32
	n             uint16
}

var unknown = row{avg: float32(math.NaN()), min: float32(math.NaN()), max: float32(math.NaN())}

// archive is one ring plus the float64 accumulator of its newest step, so
// the average of a step is not worn down by float32 rounding sample after
// sample.
type archive struct {
	Archive
	started bool
	last    int64 // step number (time / Step) of the newest step
	sum     float64
	min     float64
	max     float64
	n       uint64
	rows    []row
}

// Series is one metric's archives. It is not safe for concurrent use.
type Series struct {
	archives []archive
	dropped  uint64
}

// New makes an empty series: every step unknown.
func New(sp Spec) (*Series, error) {
	if err := sp.Validate(); err != nil {
		return nil, err
	}
	s := &Series{archives: make([]archive, len(sp))}
	for i, a := range sp {
		s.archives[i] = archive{Archive: a, rows: make([]row, a.Rows)}
		for j := range s.archives[i].rows {
			s.archives[i].rows[j] = unknown
		}
	}
	return s, nil
}

// Spec returns the archives the series keeps.
func (s *Series) Spec() Spec {
	sp := make(Spec, len(s.archives))
	for i, a := range s.archives {
		sp[i] = a.Archive
	}
	return sp
}

// Dropped is how many samples at least one archive refused because they fell
// before its newest step (out of order, or older than a step already closed).
func (s *Series) Dropped() uint64 { return s.dropped }

// Add consolidates the sample v taken at t into every archive whose newest
// step is not after t's step. It returns how many archives refused it as too
// old; a refused sample changes nothing in those archives. NaN is no sample:
// it is ignored.
func (s *Series) Add(t time.Time, v float64) (refused int) {
	if math.IsNaN(v) {
		return 0
	}
	ns := t.UnixNano()
	for i := range s.archives {
		if !s.archives[i].add(ns, v) {
			refused++
		}
	}
	if refused > 0 {
		s.dropped++
	}
	return refused
}

func (a *archive) add(ns int64, v float64) bool {
	k := floorDiv(ns, int64(a.Step))
	switch {
	case !a.started:
		a.started = true
		a.open(k)
	case k < a.last:
		return false
	case k > a.last:
		a.advance(k)
	}
	a.sum += v
	if a.n == 0 || v < a.min {
		a.min = v
	}
	if a.n == 0 || v > a.max {
		a.max = v
	}
	a.n++
	a.rows[a.slot(k)] = a.current()
	return true
}

// advance moves the newest step to k: the steps skipped on the way were not
// sampled (yet: a backfill arrives in order, so it never needs them), and the
// slots they reuse forget what they held two rings ago.
func (a *archive) advance(k int64) {
	gap := k - a.last
	if gap > int64(a.Rows) {
		gap = int64(a.Rows)
	}
	for j := k - gap + 1; j <= k; j++ {
		a.rows[a.slot(j)] = unknown
	}
	a.open(k)
}

func (a *archive) open(k int64) {
	a.last, a.sum, a.min, a.max, a.n = k, 0, 0, 0, 0
}

func (a *archive) current() row {
	n := a.n
	if n > math.MaxUint16 {
		n = math.MaxUint16
	}
	return row{avg: float32(a.sum / float64(a.n)), min: float32(a.min), max: float32(a.max), n: uint16(n)}
}

func (a *archive) slot(k int64) int {
	r := int64(a.Rows)
	return int(((k % r) + r) % r)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
