// Package health checks a container's health from outside its image: the
// node daemon connects to the container's port inside the container's
// network namespace, over TCP or HTTP.
//
// Each check runs on an OS thread that has joined the container's network
// namespace (a socket belongs to the namespace of the thread that creates
// it). Run keeps one such thread per container for its whole life; the
// state machine and the report callback stay on the caller's goroutine.
package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// Defaults for the zero values of Check's fields.
const (
	DefaultInterval = 10 * time.Second
	DefaultTimeout  = 5 * time.Second
	DefaultRetries  = 3
)

// Check describes how to check a container. Zero Interval, Timeout and
// Retries take the defaults above.
type Check struct {
	HTTPPath string        // GET this path; empty means a TCP connect check
	Port     int           // on 127.0.0.1 inside the container's namespace
	Interval time.Duration // between checks; the first check is immediate
	// StartInterval, if set, is used instead of Interval until the first
	// success: a process takes a moment to listen, and a new replica
	// should count as soon as it does.
	StartInterval time.Duration
	Timeout       time.Duration // per check, connect and response together
	StartPeriod   time.Duration // failures during it do not count towards Retries
	Retries       int           // consecutive failures before unhealthy
}

// Status is a container's health.
type Status string

// The statuses.
const (
	Starting  Status = "starting"  // no success yet
	Healthy   Status = "healthy"   // last success not followed by Retries failures
	Unhealthy Status = "unhealthy" // Retries consecutive failures
)

// Result is the outcome of the checks so far.
type Result struct {
	Status   Status    `json:"status"`
	Failures int       `json:"failures"`         // consecutive failures so far
	Last     time.Time `json:"last"`             // time of the last check
	Output   string    `json:"output,omitempty"` // last failure, one line
}

var (
	// ErrExited means the container's process is gone (or never existed).
	ErrExited = errors.New("process exited")
	// ErrTimeout means a check did not complete within Check.Timeout.
	ErrTimeout = errors.New("timeout")
)

// Run checks the container whose process is pid until ctx ends, calling
// report with every change of Status (and not otherwise), starting with the
// initial Starting as soon as the namespace is joined. report is called on
// Run's goroutine. Run returns nil when ctx ends, and an error wrapping
// ErrExited when pid's namespace cannot be joined or the process exits.
func Run(ctx context.Context, pid int, c Check, report func(Result)) error {
	c, err := c.normalize()
	if err != nil {
		return err
	}
	t, err := enter(pid)
	if err != nil {
		return err
	}
	defer t.close()
	m := newMachine(c, time.Now())
	report(m.res)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if !t.alive() {
			return fmt.Errorf("health check pid %d: %w", pid, ErrExited)
		}
		err := t.check(ctx, c)
		if ctx.Err() != nil {
			return nil
		}
		if m.observe(time.Now(), err) {
			report(m.res)
		}
		next := c.Interval
		if m.res.Status == Starting && c.StartInterval > 0 && c.StartInterval < next {
			next = c.StartInterval
		}
		timer.Reset(next)
	}
}

// Probe runs one check in pid's network namespace (for tests and for a
// one-off check). It returns nil when the check succeeds.
func Probe(ctx context.Context, pid int, c Check) error {
	c, err := c.normalize()
	if err != nil {
		return err
	}
	t, err := enter(pid)
	if err != nil {
		return err
	}
	defer t.close()
	return t.check(ctx, c)
}

// normalize fills in the defaults and validates c.
func (c Check) normalize() (Check, error) {
	if c.Port < 1 || c.Port > 65535 {
		return c, fmt.Errorf("health check: %w", errs.Invalid("port", "%d is not between 1 and 65535", c.Port))
	}
	if c.HTTPPath != "" && !strings.HasPrefix(c.HTTPPath, "/") {
		return c, fmt.Errorf("health check: %w", errs.Invalid("http_path", "%q does not start with /", c.HTTPPath))
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries <= 0 {
		c.Retries = DefaultRetries
	}
	return c, nil
}
