package ui

import "time"

// span is one of MRTG's four views of a graph.
type span string

const (
	day   span = "day"
	week  span = "week"
	month span = "month"
	year  span = "year"
)

var spans = []span{day, week, month, year}

// parseSpan reads a view's name; anything else is a day.
func parseSpan(s string) span {
	for _, sp := range spans {
		if string(sp) == s {
			return sp
		}
	}
	return day
}

// length is how far back the view reaches.
func (s span) length() time.Duration {
	switch s {
	case week:
		return 7 * 24 * time.Hour
	case month:
		return 31 * 24 * time.Hour
	case year:
		return 365 * 24 * time.Hour
	}
	return 24 * time.Hour
}

// mrtgStep is the resolution asked of the master, MRTG's: 5 min a day,
// 30 min a week, 2 h a month, a day a year. The master reads the coarsest
// archive not above it and merges its steps up to it.
func (s span) mrtgStep() time.Duration {
	switch s {
	case week:
		return 30 * time.Minute
	case month:
		return 2 * time.Hour
	case year:
		return 24 * time.Hour
	}
	return 5 * time.Minute
}

// maxPoints bounds the steps of a view: a year of days, and never more
// than a graph has pixel columns to spare.
const maxPoints = 600

func (s span) tickFormat() string {
	switch s {
	case week:
		return "Mon 2"
	case month:
		return "Jan 2"
	case year:
		return "Jan"
	}
	return "15:04"
}

// xTicks are the times the x axis marks: every 3 hours of a day, every
// midnight of a week, every Monday of a month, the
// first of every month of a year; in the local time of the process (the
// operator's machine).
func xTicks(start, end time.Time, s span) []time.Time {
	start, end = start.Local(), end.Local()
	var out []time.Time
	y, m, d := start.Date()
	t := time.Date(y, m, d, 0, 0, 0, 0, time.Local)
	for ; !t.After(end); t = next(t, s) {
		if !t.Before(start) && keep(t, s) {
			out = append(out, t)
		}
	}
	return out
}

func next(t time.Time, s span) time.Time {
	switch s {
	case day:
		return t.Add(3 * time.Hour)
	case year:
		return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.Local)
	}
	return t.AddDate(0, 0, 1)
}

func keep(t time.Time, s span) bool {
	switch s {
	case day:
		return t.Hour()%3 == 0
	case month:
		return t.Weekday() == time.Monday
	case year:
		return t.Day() == 1
	}
	return true
}
