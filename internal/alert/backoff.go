package alert

import "time"

// Delivery retries: a notice a webhook did not take (an error, a status
// other than 2xx) is tried again after Backoff, doubling from RetryBase
// up to RetryCap, each wait scaled by a jitter in [0.5, 1) so that
// webhooks failing together do not retry in step. The cap bounds how long
// a webhook that came back waits for its queue.
const (
	RetryBase = 500 * time.Millisecond
	RetryCap  = 30 * time.Second
)

// Backoff is the wait before retry number attempt (1 for the first
// retry); jitter is a random number in [0, 1).
func Backoff(attempt int, jitter float64) time.Duration {
	d := RetryBase
	for i := 1; i < attempt && d < RetryCap; i++ {
		d *= 2
	}
	d = min(d, RetryCap)
	return time.Duration(float64(d) * (0.5 + min(max(jitter, 0), 1)/2))
}
