package health

import (
	"context"
	"errors"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// script answers with codes in turn, then repeats the last one. served is
// closed once two answers past the script have been given: by then Run has
// observed every scripted answer, since checks run one after another.
type script struct {
	mu     sync.Mutex
	codes  []int
	n      int
	served chan struct{}
}

func newScript(codes ...int) *script {
	return &script{codes: codes, served: make(chan struct{})}
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	code := s.codes[min(s.n, len(s.codes)-1)]
	s.n++
	if s.n == len(s.codes)+2 {
		close(s.served)
	}
	s.mu.Unlock()
	w.WriteHeader(code)
}

// runAsync starts Run against this process and returns its reports and
// its result.
func runAsync(ctx context.Context, pid int, c Check) (<-chan Result, <-chan error) {
	reports := make(chan Result, 100)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, pid, c, func(r Result) { reports <- r }) }()
	return reports, done
}

// wait returns Run's result, failing the test if it takes too long.
func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// awaitStatus waits for Run to report status.
func awaitStatus(t *testing.T, reports <-chan Result, done <-chan error, status Status) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-reports:
			if r.Status == status {
				return
			}
		case err := <-done:
			t.Fatalf("Run returned before reporting %s: %v", status, err)
		case <-deadline:
			t.Fatalf("timed out waiting for %s", status)
		}
	}
}

// drain returns the reports still queued once Run has returned.
func drain(reports <-chan Result) []Result {
	var rs []Result
	for {
		select {
		case r := <-reports:
			rs = append(rs, r)
		default:
			return rs
		}
	}
}

func TestRun(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name  string
		codes []int
		check Check
		want  []Status
	}{
		{"healthy at once", []int{200}, Check{Retries: 3}, []Status{Starting, Healthy}},
		{"failures below retries", []int{200, 503, 503, 200}, Check{Retries: 3}, []Status{Starting, Healthy}},
		{"unhealthy then recovers", []int{200, 503, 503, 503, 200}, Check{Retries: 3},
			[]Status{Starting, Healthy, Unhealthy, Healthy}},
		{"never healthy", []int{503}, Check{Retries: 2}, []Status{Starting, Unhealthy}},
		{"start period hides failures", []int{503, 503, 503, 200}, Check{Retries: 1, StartPeriod: time.Minute},
			[]Status{Starting, Healthy}},
		{"start period over", []int{503}, Check{Retries: 2, StartPeriod: 60 * ms}, []Status{Starting, Unhealthy}},
		{"success ends start period", []int{200, 503, 503}, Check{Retries: 2, StartPeriod: time.Minute},
			[]Status{Starting, Healthy, Unhealthy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(tt.codes...)
			c := tt.check
			c.HTTPPath, c.Port, c.Interval, c.Timeout = "/healthz", serve(t, s), 10*ms, time.Second
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			start := time.Now()
			reports, done := runAsync(ctx, os.Getpid(), c)

			var got []Result
			served := s.served
			deadline := time.After(10 * time.Second)
			for len(got) < len(tt.want) || served != nil {
				select {
				case r := <-reports:
					got = append(got, r)
				case <-served:
					served = nil
				case err := <-done:
					t.Fatalf("Run returned early: %v", err)
				case <-deadline:
					t.Fatalf("timed out; reports so far: %+v", got)
				}
			}
			cancel()
			if err := wait(t, done); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got = append(got, drain(reports)...)

			var statuses []Status
			for _, r := range got {
				statuses = append(statuses, r.Status)
				if r.Status == Unhealthy && (r.Failures != c.Retries || r.Output != "GET /healthz: 503 Service Unavailable") {
					t.Errorf("unhealthy report %+v, want %d failures and the 503", r, c.Retries)
				}
				if r.Status == Unhealthy && !slices.Contains(statuses, Healthy) && r.Last.Sub(start) < c.StartPeriod {
					t.Errorf("unhealthy at %v, within the start period %v", r.Last.Sub(start), c.StartPeriod)
				}
			}
			if !slices.Equal(statuses, tt.want) {
				t.Errorf("reported %v, want %v", statuses, tt.want)
			}
		})
	}
}

func TestRunNoProcess(t *testing.T) {
	called := false
	err := Run(t.Context(), deadPid(t), Check{Port: 80}, func(Result) { called = true })
	if !errors.Is(err, ErrExited) {
		t.Fatalf("Run: %v, want ErrExited", err)
	}
	if called {
		t.Error("report called for a process that does not exist")
	}
}

func TestRunProcessExits(t *testing.T) {
	cmd := startSleep(t)
	reports, done := runAsync(t.Context(), cmd.Process.Pid, Check{Port: serve(t, http.NotFoundHandler()), Interval: 10 * time.Millisecond})
	awaitStatus(t, reports, done, Healthy)
	cmd.Process.Kill()
	cmd.Wait()
	if err := wait(t, done); !errors.Is(err, ErrExited) {
		t.Fatalf("Run: %v, want ErrExited", err)
	}
}

func TestRunNoLeak(t *testing.T) {
	port := serve(t, http.NotFoundHandler())
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(t.Context())
	reports, done := runAsync(ctx, os.Getpid(), Check{Port: port, Interval: 10 * time.Millisecond})
	awaitStatus(t, reports, done, Healthy)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run: %v", err)
	}
	eventually(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= base })
}
