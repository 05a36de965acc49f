package node

import (
	"math"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/runtime"
)

func TestShouldRestart(t *testing.T) {
	var (
		ok        = runtime.ExitStatus{Code: 0}
		failed    = runtime.ExitStatus{Code: 1}
		killed    = runtime.ExitStatus{Code: 137, Signal: "KILL"}
		startErr  = runtime.ExitStatus{Code: -1, Error: "exec: no such file"}
		no        = nodeapi.RestartPolicy{Policy: nodeapi.RestartNo}
		unset     = nodeapi.RestartPolicy{}
		always    = nodeapi.RestartPolicy{Policy: nodeapi.RestartAlways}
		onFailure = nodeapi.RestartPolicy{Policy: nodeapi.RestartOnFailure}
		max3      = nodeapi.RestartPolicy{Policy: nodeapi.RestartOnFailure, MaxRetries: 3}
	)
	tests := []struct {
		name          string
		policy        nodeapi.RestartPolicy
		exit          runtime.ExitStatus
		restarts      int
		stoppedByUser bool
		want          bool
	}{
		{"no, success", no, ok, 0, false, false},
		{"no, failure", no, failed, 0, false, false},
		{"unset, failure", unset, failed, 0, false, false},
		{"unset, start error", unset, startErr, 0, false, false},
		{"unknown policy", nodeapi.RestartPolicy{Policy: "sometimes"}, failed, 0, false, false},

		{"always, success", always, ok, 0, false, true},
		{"always, failure", always, failed, 0, false, true},
		{"always, start error", always, startErr, 0, false, true},
		{"always, many restarts", always, ok, 1000, false, true},
		{"always, stopped by user", always, killed, 0, true, false},

		{"on-failure, success", onFailure, ok, 0, false, false},
		{"on-failure, failure", onFailure, failed, 0, false, true},
		{"on-failure, killed", onFailure, killed, 0, false, true},
		{"on-failure, start error", onFailure, startErr, 0, false, true},
		{"on-failure, start error with code 0", onFailure, runtime.ExitStatus{Error: "boom"}, 0, false, true},
		{"on-failure unlimited, many restarts", onFailure, failed, 1000, false, true},
		{"on-failure, stopped by user", onFailure, killed, 0, true, false},

		{"max 3, first", max3, failed, 0, false, true},
		{"max 3, third", max3, failed, 2, false, true},
		{"max 3, reached", max3, failed, 3, false, false},
		{"max 3, past", max3, failed, 4, false, false},
		{"max 3, success", max3, ok, 0, false, false},
		{"max 3, stopped by user", max3, failed, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := shouldRestart(tt.policy, tt.exit, tt.restarts, tt.stoppedByUser)
			if got != tt.want {
				t.Errorf("shouldRestart(%+v, %+v, %d, %v) = %v, want %v",
					tt.policy, tt.exit, tt.restarts, tt.stoppedByUser, got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{-1, 100 * time.Millisecond},
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{2, 400 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{8, 25600 * time.Millisecond},
		{9, 30 * time.Second}, // 51.2s, capped
		{20, 30 * time.Second},
		{63, 30 * time.Second},
		{64, 30 * time.Second},
		{1000, 30 * time.Second},
		{math.MaxInt, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := backoff(tt.failures); got != tt.want {
			t.Errorf("backoff(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

func TestBackoffMonotonic(t *testing.T) {
	prev := backoff(0)
	for i := 1; i <= 100; i++ {
		d := backoff(i)
		if d < prev || d > backoffMax {
			t.Fatalf("backoff(%d) = %v after backoff(%d) = %v; want non-decreasing and at most %v", i, d, i-1, prev, backoffMax)
		}
		prev = d
	}
}

func TestNextFailures(t *testing.T) {
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	run := func(d time.Duration) runtime.ExitStatus {
		return runtime.ExitStatus{Code: 1, Started: start, Finished: start.Add(d)}
	}
	tests := []struct {
		name string
		prev int
		exit runtime.ExitStatus
		want int
	}{
		{"stable run resets", 5, run(10 * time.Second), 0},
		{"long run resets", 5, run(time.Hour), 0},
		{"stable run, clean exit, resets", 3, runtime.ExitStatus{Started: start, Finished: start.Add(time.Minute)}, 0},
		{"just short of stable", 5, run(10*time.Second - time.Nanosecond), 6},
		{"quick crash", 0, run(50 * time.Millisecond), 1},
		{"instant crash", 2, run(0), 3},
		{"start error", 4, runtime.ExitStatus{Code: -1, Error: "exec failed", Finished: start}, 5},
		{"start error after a long time", 4, runtime.ExitStatus{Code: -1, Error: "exec failed", Started: start, Finished: start.Add(time.Hour)}, 5},
		{"never started", 1, runtime.ExitStatus{Code: 1, Finished: start.Add(time.Hour)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextFailures(tt.prev, tt.exit); got != tt.want {
				t.Errorf("nextFailures(%d, %+v) = %d, want %d", tt.prev, tt.exit, got, tt.want)
			}
		})
	}
}
