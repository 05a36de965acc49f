package cli

import (
	"testing"
	"time"
)

// TestWhenFlag: moat metrics --since/--until read a duration back from
// now (days too), an RFC 3339 time or a date; what is not one of those,
// or would overflow a duration, is refused rather than read in part.
func TestWhenFlag(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "", want: time.Time{}},
		{in: "24h", want: now.Add(-24 * time.Hour)},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "1.5d", want: now.Add(-36 * time.Hour)},
		{in: "0d", want: now},
		{in: "2026-12-01T10:00:00Z", want: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
		{in: "2026-12-01T10:00:00+01:00", want: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)},
		{in: "2026-12-01", want: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{in: "7xd", bad: true},
		{in: "7 d", bad: true},
		{in: "d", bad: true},
		{in: "-1d", bad: true},
		{in: "-5m", bad: true},
		{in: "infd", bad: true},
		{in: "NaNd", bad: true},
		{in: "1e9d", bad: true},
		{in: "3000000h", bad: true},
		{in: "yesterday", bad: true},
		{in: "2026-13-01", bad: true},
	} {
		got, err := whenFlag("since", c.in, now)
		switch {
		case c.bad && err == nil:
			t.Errorf("--since %q: %v; want refused", c.in, got)
		case !c.bad && err != nil:
			t.Errorf("--since %q: %v", c.in, err)
		case !c.bad && !got.Equal(c.want):
			t.Errorf("--since %q: %v; want %v", c.in, got, c.want)
		}
	}
}
