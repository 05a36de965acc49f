package rrd

import (
	"math"
	"time"
)

// Point is one step of an archive: the step's start, its average, minimum
// and maximum (NaN when no sample fell into it) and how many samples did.
type Point struct {
	T             time.Time
	Avg, Min, Max float64
	N             int
}

// Fetch returns the steps from from's step to to's step inclusive, read from
// the finest archive that both reaches back to from and gives at most
// maxPoints points (maxPoints <= 0: no limit). When no archive does both it
// takes the coarsest that fits maxPoints (the longest history among them),
// and failing that the coarsest. Steps the chosen archive does not hold come
// back unknown. At most maxPoints points (or, when maxPoints <= 0, as many as
// the archive's ring holds) come back: past that, the newest. It also returns the chosen step.
func (s *Series) Fetch(from, to time.Time, maxPoints int) (time.Duration, []Point) {
	if to.Before(from) {
		from, to = to, from
	}
	a := &s.archives[s.choose(from.UnixNano(), to.UnixNano(), maxPoints)]
	limit := int64(maxPoints)
	if maxPoints <= 0 {
		limit = int64(a.Rows) // older steps are unknown anyway
	}
	return a.Step, a.points(from.UnixNano(), to.UnixNano(), limit)
}

func (s *Series) choose(from, to int64, maxPoints int) int {
	coarsestFit := -1
	for i := range s.archives {
		a := &s.archives[i]
		if maxPoints > 0 && a.count(from, to) > int64(maxPoints) {
			continue
		}
		if a.reaches(from) {
			return i
		}
		coarsestFit = i
	}
	if coarsestFit >= 0 {
		return coarsestFit
	}
	return len(s.archives) - 1
}

func (a *archive) count(from, to int64) int64 {
	return floorDiv(to, int64(a.Step)) - floorDiv(from, int64(a.Step)) + 1
}

// reaches: from's step is still in the ring. Before the first sample the
// ring is empty and reaches nothing back, so a new series is read from its
// finest archive.
func (a *archive) reaches(from int64) bool {
	return !a.started || floorDiv(from, int64(a.Step)) > a.last-int64(a.Rows)
}

func (a *archive) points(from, to, limit int64) []Point {
	step := int64(a.Step)
	k0, k1 := floorDiv(from, step), floorDiv(to, step)
	if k1 < k0 {
		return nil
	}
	n := k1 - k0 + 1
	if n <= 0 || n > limit { // n <= 0: the subtraction overflowed
		n = limit
		k0 = k1 - n + 1
	}
	pts := make([]Point, 0, n)
	// Counting i rather than comparing k with k1 cannot loop forever at the
	// end of int64.
	for i := int64(0); i < n; i++ {
		k := k0 + i
		r := unknown
		if a.started && k <= a.last && k > a.last-int64(a.Rows) {
			r = a.rows[a.slot(k)]
		}
		p := Point{T: time.Unix(0, k*step).UTC(), N: int(r.n)}
		if r.n == 0 {
			p.Avg, p.Min, p.Max = math.NaN(), math.NaN(), math.NaN()
		} else {
			p.Avg, p.Min, p.Max = float64(r.avg), float64(r.min), float64(r.max)
		}
		pts = append(pts, p)
	}
	return pts
}
