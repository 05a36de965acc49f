package node

import (
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/runtime"
)

// Restart backoff: the first restart after a quick failure waits
// backoffBase, each further one twice as long, up to backoffMax. A run that
// lasted stableRun resets the count: it was not crash-looping.
const (
	backoffBase = 100 * time.Millisecond
	backoffMax  = 30 * time.Second
	stableRun   = 10 * time.Second
)

// shouldRestart applies the restart policy to an exit. Pure.
func shouldRestart(p nodeapi.RestartPolicy, exit runtime.ExitStatus, restarts int, stoppedByUser bool) bool {
	if stoppedByUser {
		return false
	}
	switch p.Policy {
	case nodeapi.RestartAlways:
		return true
	case nodeapi.RestartOnFailure:
		failed := exit.Code != 0 || exit.Error != ""
		return failed && (p.MaxRetries == 0 || restarts < p.MaxRetries)
	}
	return false
}

// backoff is the delay before the next restart, given how many quick
// failures came before. Pure.
func backoff(failures int) time.Duration {
	d := backoffBase
	for i := 0; i < failures && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// nextFailures updates the quick-failure count after a run. Pure.
func nextFailures(prev int, exit runtime.ExitStatus) int {
	if exit.Error == "" && !exit.Started.IsZero() && exit.Finished.Sub(exit.Started) >= stableRun {
		return 0
	}
	return prev + 1
}
