package health

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestMachine(t *testing.T) {
	type step struct {
		at time.Duration // since the start of Run
		ok bool
	}
	ok := func(at time.Duration) step { return step{at, true} }
	fail := func(at time.Duration) step { return step{at, false} }
	tests := []struct {
		name         string
		check        Check
		steps        []step
		want         []Status // reported changes, after the initial Starting
		wantFailures int      // at the end
	}{
		{"first success", Check{Retries: 3}, []step{ok(0)}, []Status{Healthy}, 0},
		{"failures below retries", Check{Retries: 3},
			[]step{ok(0), fail(1), fail(2), ok(3)}, []Status{Healthy}, 0},
		{"unhealthy then recovers", Check{Retries: 2},
			[]step{ok(0), fail(1), fail(2), fail(3), ok(4)}, []Status{Healthy, Unhealthy, Healthy}, 0},
		{"never healthy", Check{Retries: 2},
			[]step{fail(0), fail(1), fail(2)}, []Status{Unhealthy}, 3},
		{"start period hides failures", Check{Retries: 1, StartPeriod: 10},
			[]step{fail(0), fail(5), fail(9), ok(12)}, []Status{Healthy}, 0},
		{"start period over", Check{Retries: 2, StartPeriod: 10},
			[]step{fail(0), fail(5), fail(10), fail(11)}, []Status{Unhealthy}, 2},
		{"success ends start period", Check{Retries: 2, StartPeriod: 100},
			[]step{ok(0), fail(1), fail(2)}, []Status{Healthy, Unhealthy}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Unix(1000, 0)
			m := newMachine(tt.check, start)
			var got []Status
			for _, s := range tt.steps {
				var err error
				if !s.ok {
					err = errors.New("GET /: 503 Service Unavailable")
				}
				if m.observe(start.Add(s.at), err) {
					got = append(got, m.res.Status)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("changes = %v, want %v", got, tt.want)
			}
			if m.res.Failures != tt.wantFailures {
				t.Errorf("failures = %d, want %d", m.res.Failures, tt.wantFailures)
			}
			last := tt.steps[len(tt.steps)-1]
			if wantOut := !last.ok; (m.res.Output != "") != wantOut {
				t.Errorf("output = %q after ok=%v", m.res.Output, last.ok)
			}
		})
	}
}

// TestFastStartChecksKeepTheBudget: with checks every 50 ms before the
// first success, failures count once per interval from the start, so a
// replica has Retries intervals to come up, as with a check every interval
// (the first of which comes one interval after the start).
func TestFastStartChecksKeepTheBudget(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newMachine(Check{Interval: time.Second, Retries: 2}, t0)
	fail := errors.New("connection refused")
	for i := range 20 { // 0.95 s of failures, every 50 ms
		m.observe(t0.Add(time.Duration(i)*50*time.Millisecond), fail)
	}
	if m.res.Status != Starting || m.res.Failures != 0 {
		t.Fatalf("after 0.95s of fast failures: %+v, want still starting, nothing counted", m.res)
	}
	m.observe(t0.Add(time.Second), fail)
	if m.res.Status != Starting || m.res.Failures != 1 {
		t.Fatalf("one interval after the start: %+v, want 1 failure counted", m.res)
	}
	m.observe(t0.Add(1500*time.Millisecond), fail)
	if m.res.Failures != 1 {
		t.Fatalf("half an interval later: %+v, want still 1", m.res)
	}
	m.observe(t0.Add(2*time.Second), fail)
	if m.res.Status != Unhealthy || m.res.Failures != 2 {
		t.Fatalf("two intervals after the start: %+v, want unhealthy", m.res)
	}
}
