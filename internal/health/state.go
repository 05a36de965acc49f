package health

import "time"

// machine turns check outcomes into a Result. It is pure: the caller
// supplies the time of each check.
type machine struct {
	startUntil time.Time // end of the start period
	retries    int
	interval   time.Duration
	counted    time.Time // when a failure last counted
	res        Result
}

func newMachine(c Check, start time.Time) *machine {
	return &machine{
		startUntil: start.Add(c.StartPeriod),
		retries:    c.Retries,
		interval:   c.Interval,
		// The first failure counts one interval after the start, not at
		// once: a program that starts gets Retries intervals to listen.
		counted: start,
		res:     Result{Status: Starting},
	}
}

// observe records the outcome of a check made at now (err nil on success)
// and reports whether the Status changed.
func (m *machine) observe(now time.Time, err error) bool {
	was := m.res.Status
	m.res.Last = now
	if err == nil {
		m.res.Status, m.res.Failures, m.res.Output = Healthy, 0, ""
		return was != Healthy
	}
	m.res.Output = err.Error()
	if was == Starting && now.Before(m.startUntil) {
		return false
	}
	// Before the first success checks may come faster than the interval
	// (StartInterval); failures still count at most once per interval, so
	// a slow starter gets Retries intervals, as without fast checks.
	if was == Starting && !m.counted.IsZero() && now.Sub(m.counted) < m.interval {
		return false
	}
	m.counted = now
	m.res.Failures++
	if m.res.Failures >= m.retries {
		m.res.Status = Unhealthy
	}
	return m.res.Status != was
}
