package cli

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/masterapi"
)

func (a *app) metricsCommand() *cobra.Command {
	var since, until string
	var step time.Duration
	var points int
	cmd := &cobra.Command{
		Use:   "metrics node NODE | app APP | replica REPLICA | route HOST",
		Short: "Show a node's, app's, replica's or route's history: the average of each field per step",
		Long: `Show the history the master keeps of a node, an app (its replicas
together), a replica or an edge route: one row per step, the average of
each field in it ("-": nothing sampled). The step is the finest the master
keeps for the range in at most --points rows, or --step if coarser. --json
prints every field's average, minimum and maximum.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := args[0]
			switch kind {
			case masterapi.MetricsNode, masterapi.MetricsApp, masterapi.MetricsReplica, masterapi.MetricsRoute:
			default:
				return usageError{fmt.Errorf("%q is not node, app, replica or route", kind)}
			}
			now := time.Now()
			q := masterapi.MetricsQuery{Kind: kind, Name: args[1], Step: step, Points: points}
			var err error
			if q.Since, err = whenFlag("since", since, now); err != nil {
				return err
			}
			if q.Until, err = whenFlag("until", until, now); err != nil {
				return err
			}
			if step < 0 || points < 0 {
				return usageError{fmt.Errorf("--step and --points cannot be negative")}
			}
			m, err := a.masterClient().MetricsHistory(cmd.Context(), q)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, m)
			}
			return metricsTable(a.stdout, m)
		},
	}
	cmd.Flags().StringVar(&since, "since", "24h", "from: a duration ago (24h, 7d) or a time (RFC 3339, or a date: midnight UTC)")
	cmd.Flags().StringVar(&until, "until", "", "to: a duration ago or a time (default now)")
	cmd.Flags().DurationVar(&step, "step", 0, "at least this step (10s, 1m, 5m, 1h)")
	cmd.Flags().IntVar(&points, "points", 0, "at most this many rows (default 600)")
	return cmd
}

// whenFlag reads a time flag: empty is zero (the master's default), a
// duration is that long before now ("7d" counts days), else an RFC 3339
// time or a date (midnight UTC, as moat events and moat audit read one).
func whenFlag(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := parseAgo(s)
	if err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageError{fmt.Errorf("--%s %q: not a duration (24h, 7d) or a time (RFC 3339, or a date)", name, s)}
}

// maxAgo bounds a duration back from now: beyond, time.Duration overflows.
const maxAgo = 100000 * 24 * time.Hour

// parseAgo reads a duration back from now: a Go duration, or a number
// of days ("7d", "1.5d"). Pure.
func parseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || !(n >= 0 && n <= float64(maxAgo/(24*time.Hour))) {
			return 0, fmt.Errorf("bad days %q", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && (d < 0 || d > maxAgo) {
		err = fmt.Errorf("%q: not between 0 and %d days", s, maxAgo/(24*time.Hour))
	}
	return d, err
}

// metricsTable prints one row per step: its time, then each field's
// average in its unit.
func metricsTable(w *output, m masterapi.Metrics) error {
	head := []string{"TIME"}
	for _, f := range m.Fields {
		head = append(head, strings.ToUpper(f.Name))
	}
	rows := [][]string{head}
	layout := "2006-01-02 15:04"
	if m.Step < 60 {
		layout = "2006-01-02 15:04:05"
	}
	// Steps before the first sample (the thing did not exist yet) and the
	// step still being sampled are left out of the table, not of --json.
	first, last := 0, len(m.Times)-1
	for first <= last && !sampledAt(m, first) {
		first++
	}
	for last >= first && !sampledAt(m, last) {
		last--
	}
	if first > last {
		fmt.Fprintf(w, "%s %s: no sample in this range\n", m.Kind, m.Name)
		return nil
	}
	// Local times; across a change of the UTC offset (summer time ending
	// repeats an hour) each carries its zone, so no two rows read alike.
	_, off := time.Unix(m.Times[first], 0).Zone()
	for i := first + 1; i <= last; i++ {
		if _, o := time.Unix(m.Times[i], 0).Zone(); o != off {
			layout += " MST"
			break
		}
	}
	for i := first; i <= last; i++ {
		t := m.Times[i]
		row := []string{time.Unix(t, 0).Format(layout)}
		for f, field := range m.Fields {
			row = append(row, humanValue(float64(m.Avg[f][i]), field.Unit))
		}
		rows = append(rows, row)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s, step %s\n", m.Kind, m.Name, time.Duration(m.Step*float64(time.Second)))
	if err := table(&b, rows); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// sampledAt says whether any field has a value at step i.
func sampledAt(m masterapi.Metrics, i int) bool {
	for f := range m.Fields {
		if i < len(m.Avg[f]) && !math.IsNaN(float64(m.Avg[f][i])) {
			return true
		}
	}
	return false
}

// humanValue prints a value in its unit: cores, bytes as KiB/MiB/GiB,
// rates per second, seconds as ms; "-" when unknown.
func humanValue(v float64, unit string) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case unit == "cores":
		return fmt.Sprintf("%.2f", v) // always two decimals: a column of cores lines up
	case unit == "bytes":
		return humanBytes(v)
	case unit == "bytes/s":
		return humanBytes(v) + "/s"
	case unit == "1/s":
		return trimFloat(v) + "/s"
	case unit == "s" && math.Abs(v) >= 2*86400: // a certificate's time left
		return trimFloat(v/86400) + "d"
	case unit == "s" && math.Abs(v) >= 2*3600:
		return trimFloat(v/3600) + "h"
	case unit == "s" && math.Abs(v) >= 120:
		return trimFloat(v/60) + "min"
	case unit == "s":
		return trimFloat(v*1000) + "ms"
	}
	return trimFloat(v)
}

func humanBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0fB", v)
	}
	return trimFloat(v) + units[i]
}

// trimFloat prints three significant digits at most, without trailing
// zeros and without an exponent for everyday sizes.
func trimFloat(v float64) string {
	var s string
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		s = fmt.Sprintf("%.1f", v)
	case a >= 0.01:
		s = fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}
