package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/moatcloud/moat/internal/provider"
)

// Bounds on the waits a response can ask for: a provider asking for more
// than maxRetryAfter is taken as asking for maxRetryAfter (the policy caps
// it further), one saying nothing usable gets defaultRetryAfter.
const (
	maxRetryAfter     = time.Hour
	defaultRetryAfter = 10 * time.Second
)

// classify maps an error from godo onto the provider's classes. The
// message of the answer stays in the chain (DigitalOcean's own words are
// what an operator needs to read).
func classify(err error, now time.Time) error {
	if err == nil {
		return nil
	}
	var er *godo.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		code := er.Response.StatusCode
		switch {
		case code == http.StatusTooManyRequests:
			return &provider.RateLimited{RetryAfter: RetryAfter(er.Response.Header, now), Err: err}
		case code >= 500:
			return fmt.Errorf("%w: %w", provider.ErrTemporary, err)
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			return fmt.Errorf("%w: %w", provider.ErrAuth, err)
		case code == http.StatusNotFound:
			return fmt.Errorf("%w: %w", provider.ErrNotFound, err)
		case code == http.StatusUnprocessableEntity && capacityMessage(er.Message):
			return fmt.Errorf("%w: %w", provider.ErrCapacity, err)
		}
		return err
	}
	var arg *godo.ArgError
	if errors.As(err, &arg) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	// No answer (connection refused or reset, a per-call timeout, a body
	// cut short): the call may or may not have been acted on.
	return fmt.Errorf("%w: %w", provider.ErrTemporary, err)
}

// capacityMessage says whether a 422's message is DigitalOcean saying it
// has no room for this size or region right now, as opposed to a request
// it refuses whatever the place (a bad image, a droplet limit reached).
// The messages seen from the API: "Size is not available in this region.",
// "Region is not available", "The size you selected is temporarily
// unavailable because of High CPU server capacity", "size is unavailable".
func capacityMessage(msg string) bool {
	m := strings.ToLower(msg)
	if strings.Contains(m, "limit") {
		return false // "will exceed your droplet limit": an account quota, the same everywhere
	}
	for _, s := range []string{
		"not available in this region",
		"region is not available",
		"size is not available",
		"size is unavailable",
		"temporarily unavailable",
		"capacity",
	} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// RetryAfter is how long a 429 asks to wait: Retry-After (seconds or an
// HTTP date), else RateLimit-Reset (the Unix time the oldest counted
// request leaves the window), else defaultRetryAfter; bounded to
// [0, maxRetryAfter].
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			if n < 0 {
				return 0
			}
			if n > int64(maxRetryAfter/time.Second) {
				return maxRetryAfter
			}
			return time.Duration(n) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return bound(t.Sub(now))
		}
	}
	if v := strings.TrimSpace(h.Get("RateLimit-Reset")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			if n > now.Unix()+int64(maxRetryAfter/time.Second) {
				return maxRetryAfter
			}
			return bound(time.Unix(n, 0).Sub(now))
		}
	}
	return defaultRetryAfter
}

func bound(d time.Duration) time.Duration {
	return min(max(d, 0), maxRetryAfter)
}
