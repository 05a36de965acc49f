package cli

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Paris wherever the tests run

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
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

// TestMetricsTableSummerTimeEnds: in a zone leaving summer time the
// hour repeats; the table's local times carry their zone then, so no two
// rows read alike, and only then.
func TestMetricsTableSummerTimeEnds(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = paris
	table := func(from time.Time) []string {
		m := masterapi.Metrics{Kind: "node", Name: "n1", Step: 3600, Fields: []nodeapi.Field{{Name: "load1"}}, Avg: [][]masterapi.Value{{}}}
		for i := range 4 {
			m.Times = append(m.Times, from.Add(time.Duration(i)*time.Hour).Unix())
			m.Avg[0] = append(m.Avg[0], 1)
		}
		var o output
		if err := metricsTable(&o, m); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(o.buf.String()), "\n")
		times := map[string]bool{}
		for _, l := range lines[2:] {
			times[strings.TrimSpace(l[:strings.LastIndex(strings.TrimSpace(l), " ")])] = true
		}
		if len(times) != 4 {
			t.Errorf("rows:\n%s\nwant 4 different times", o.buf.String())
		}
		return lines
	}
	// 2026-10-25 01:00 UTC is 03:00 CEST, then 02:00 CET: 02:00 twice.
	lines := table(time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC))
	if !strings.Contains(lines[2], "CEST") || !strings.Contains(lines[5], "CET") {
		t.Errorf("rows across the change without their zones:\n%s", strings.Join(lines, "\n"))
	}
	lines = table(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	if strings.Contains(strings.Join(lines, "\n"), "CET") {
		t.Errorf("a zone on rows in one offset:\n%s", strings.Join(lines, "\n"))
	}
}
