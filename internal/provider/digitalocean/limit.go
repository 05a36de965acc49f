package digitalocean

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DigitalOcean's published limits per API token: 250 requests in any
// minute and 5,000 in any hour. moat keeps under them itself, so a burst
// of scale-ups waits here instead of collecting 429s.
const (
	PerMinute = 250
	PerHour   = 5000
)

// window remembers when the last limit requests were sent, so that no
// span of length per holds more than limit of them.
type window struct {
	limit int
	per   time.Duration
	sent  []time.Time // oldest first, at most limit
}

// delay is how long a request at now must wait to stay within the window.
func (w *window) delay(now time.Time) time.Duration {
	if len(w.sent) < w.limit {
		return 0
	}
	return max(w.sent[len(w.sent)-w.limit].Add(w.per).Sub(now), 0)
}

func (w *window) record(now time.Time) {
	w.sent = append(w.sent, now)
	if len(w.sent) > w.limit {
		w.sent = append(w.sent[:0], w.sent[len(w.sent)-w.limit:]...)
	}
}

// limiter holds one token's windows. Clouds opened with the same token and
// endpoint share one (pools of the same account draw on the same budget).
type limiter struct {
	mu      sync.Mutex
	windows []*window
	until   time.Time // DigitalOcean said: nothing before then
	now     func() time.Time
}

func newLimiter(perMinute, perHour int) *limiter {
	return &limiter{
		windows: []*window{{limit: perMinute, per: time.Minute}, {limit: perHour, per: time.Hour}},
		now:     time.Now,
	}
}

// wait blocks until a request may be sent, and counts it as sent.
func (l *limiter) wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := l.now()
		d := l.until.Sub(now)
		for _, w := range l.windows {
			d = max(d, w.delay(now))
		}
		if d == 0 {
			for _, w := range l.windows {
				w.record(now)
			}
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for DigitalOcean's request budget (%s): %w", d.Round(time.Millisecond), ctx.Err())
		case <-t.C:
		}
	}
}

// hold makes every request of this token wait d from now (what a 429 or
// an exhausted hourly budget asked, for all of this process's callers).
func (l *limiter) hold(d time.Duration) {
	if d <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.now().Add(d); t.After(l.until) {
		l.until = t
	}
}

// holdFor is how long an answer asks every caller to wait: a 429's
// Retry-After, or, when RateLimit-Remaining says the hourly budget is
// spent (another client of the same token may have spent it), until
// RateLimit-Reset.
func holdFor(status int, h http.Header, now time.Time) time.Duration {
	if status == http.StatusTooManyRequests {
		return RetryAfter(h, now)
	}
	if strings.TrimSpace(h.Get("RateLimit-Remaining")) != "0" {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(h.Get("RateLimit-Reset")), 10, 64)
	if err != nil || n <= now.Unix() {
		return 0
	}
	if n > now.Unix()+int64(maxRetryAfter/time.Second) {
		return maxRetryAfter
	}
	return bound(time.Unix(n, 0).Sub(now))
}

var limiters sync.Map // sha256(endpoint NUL token) -> *limiter

func sharedLimiter(endpoint, token string) *limiter {
	key := sha256.Sum256([]byte(endpoint + "\x00" + token))
	l, _ := limiters.LoadOrStore(key, newLimiter(PerMinute, PerHour))
	return l.(*limiter)
}

// transport adds the token, waits for the budget and counts every request
// it sends (the figure behind Cloud.Calls).
type transport struct {
	base  http.RoundTripper
	token string
	limit *limiter
	calls *atomic.Int64
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.limit.wait(req.Context()); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	t.calls.Add(1)
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		t.limit.hold(holdFor(resp.StatusCode, resp.Header, t.limit.now()))
	}
	return resp, err
}
