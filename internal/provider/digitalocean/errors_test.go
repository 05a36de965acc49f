package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/moatcloud/moat/internal/provider"
)

func answer(code int, msg string, h http.Header) error {
	if h == nil {
		h = http.Header{}
	}
	u, _ := url.Parse("https://api.digitalocean.com/v2/droplets")
	return &godo.ErrorResponse{Message: msg, Response: &http.Response{StatusCode: code, Header: h,
		Request: &http.Request{Method: "POST", URL: u}}}
}

func TestClassify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		err  error
		want error // nil: none of the classes
		wait time.Duration
	}{
		{answer(429, "API Rate limit exceeded.", http.Header{"Retry-After": {"7"}}), nil, 7 * time.Second},
		{answer(429, "API Rate limit exceeded.", http.Header{"Ratelimit-Reset": {strconv.FormatInt(now.Unix()+42, 10)}}), nil, 42 * time.Second},
		{answer(500, "Server was unable to give you a response.", nil), provider.ErrTemporary, 0},
		{answer(503, "", nil), provider.ErrTemporary, 0},
		{answer(401, "Unable to authenticate you.", nil), provider.ErrAuth, 0},
		{answer(403, "You do not have access for the attempted action.", nil), provider.ErrAuth, 0},
		{answer(404, "The resource you were accessing could not be found.", nil), provider.ErrNotFound, 0},
		{answer(422, "Size is not available in this region.", nil), provider.ErrCapacity, 0},
		{answer(422, "Region is not available", nil), provider.ErrCapacity, 0},
		{answer(422, "The size you selected is temporarily unavailable because of High CPU server capacity", nil), provider.ErrCapacity, 0},
		{answer(422, "size is unavailable", nil), provider.ErrCapacity, 0},
		{answer(422, "creating this/these droplet(s) will exceed your droplet limit", nil), nil, 0},
		{answer(422, "You specified an invalid image for Droplet creation.", nil), nil, 0},
		{answer(400, "bad request", nil), nil, 0},
		{&url.Error{Op: "Post", URL: "x", Err: errors.New("connection reset by peer")}, provider.ErrTemporary, 0},
		{&url.Error{Op: "Post", URL: "x", Err: context.DeadlineExceeded}, provider.ErrTemporary, 0},
		{fmt.Errorf("wrapped: %w", context.Canceled), nil, 0},
		{godo.NewArgError("id", "cannot be less than 1"), nil, 0},
	} {
		got := classify(tc.err, now)
		var rl *provider.RateLimited
		if tc.wait > 0 {
			if !errors.As(got, &rl) || rl.RetryAfter != tc.wait {
				t.Errorf("%v: %v, want rate limited for %s", tc.err, got, tc.wait)
			}
			continue
		}
		if errors.As(got, &rl) {
			t.Errorf("%v: rate limited", tc.err)
		}
		for _, class := range []error{provider.ErrTemporary, provider.ErrAuth, provider.ErrNotFound, provider.ErrCapacity} {
			if errors.Is(got, class) != (class == tc.want) {
				t.Errorf("%v: classified %v, want %v", tc.err, got, tc.want)
			}
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("%v: the original error is lost: %v", tc.err, got)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"30"}}, 30 * time.Second},
		{http.Header{"Retry-After": {"0"}}, 0},
		{http.Header{"Retry-After": {"-5"}}, 0},
		{http.Header{"Retry-After": {"99999999999999"}}, maxRetryAfter},
		{http.Header{"Retry-After": {now.Add(90 * time.Second).UTC().Format(http.TimeFormat)}}, 90 * time.Second},
		{http.Header{"Retry-After": {now.Add(-time.Hour).UTC().Format(http.TimeFormat)}}, 0},
		{http.Header{"Retry-After": {"soon"}, "Ratelimit-Reset": {strconv.FormatInt(now.Unix()+5, 10)}}, 5 * time.Second},
		{http.Header{"Ratelimit-Reset": {strconv.FormatInt(now.Unix()-5, 10)}}, 0},
		{http.Header{"Ratelimit-Reset": {"9223372036854775807"}}, maxRetryAfter},
		{http.Header{"Ratelimit-Reset": {"x"}}, defaultRetryAfter},
		{http.Header{}, defaultRetryAfter},
	} {
		if got := RetryAfter(tc.h, now); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.h, got, tc.want)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	f.Add("30", "")
	f.Add("", "1800000042")
	f.Add("Wed, 21 Oct 2026 07:28:00 GMT", "")
	f.Add("-1", "-1")
	f.Add("1e9", "9223372036854775807")
	f.Fuzz(func(t *testing.T, retryAfter, reset string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set("RateLimit-Reset", reset)
		if d := RetryAfter(h, time.Unix(1_800_000_000, 0)); d < 0 || d > maxRetryAfter {
			t.Fatalf("Retry-After %q, reset %q: %s", retryAfter, reset, d)
		}
	})
}

func TestTags(t *testing.T) {
	tags, err := Tags(map[string]string{"moat-pool": "web", "moat-cluster": "prod", "zone": "a:b", "empty": ""})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(tags) != "[empty: moat-cluster:prod moat-pool:web zone:a:b]" {
		t.Fatalf("tags %v", tags)
	}
	for _, bad := range []map[string]string{{"a:b": "c"}, {"": "x"}, {"k": "a b"}, {"k": "é"}, {"k": "a.b"}, {"k": string(make([]byte, 300))}} {
		if _, err := Tags(bad); err == nil {
			t.Errorf("%q became tags", bad)
		}
	}
	if l := Labels([]string{"web", "moat-pool:web", ":x", "a:b:c"}); fmt.Sprint(l) != "map[a:b:c moat-pool:web]" {
		t.Fatalf("labels %v", l)
	}
}

func FuzzTags(f *testing.F) {
	f.Add("moat-cluster", "prod")
	f.Add("k", "a:b")
	f.Add("a:b", "")
	f.Fuzz(func(t *testing.T, k, v string) {
		tags, err := Tags(map[string]string{k: v})
		if err != nil {
			return
		}
		if len(tags) != 1 || len(tags[0]) > 255 {
			t.Fatalf("tags %q", tags)
		}
		if l := Labels(tags); len(l) != 1 || l[k] != v {
			t.Fatalf("%q=%q → %q → %v", k, v, tags, l)
		}
	})
}

func TestWindow(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := &window{limit: 3, per: time.Minute}
	for i, tc := range []struct {
		at   time.Duration
		wait time.Duration
	}{
		{0, 0}, {time.Second, 0}, {2 * time.Second, 0},
		{3 * time.Second, 57 * time.Second}, // the 4th within the minute waits for the 1st to leave it
		{60 * time.Second, 0},
		{61 * time.Second, 0}, // the 2nd (at 1 s) left at 61 s
		{62 * time.Second, 0}, // the 3rd (at 2 s)
		{63 * time.Second, 57 * time.Second},
	} {
		now := t0.Add(tc.at)
		if got := w.delay(now); got != tc.wait {
			t.Fatalf("step %d at %s: wait %s, want %s", i, tc.at, got, tc.wait)
		}
		if tc.wait == 0 {
			w.record(now)
		}
		if len(w.sent) > w.limit {
			t.Fatalf("remembers %d sends", len(w.sent))
		}
	}
}

func TestLimiterWaits(t *testing.T) {
	l := newLimiter(2, 100)
	clock := time.Unix(0, 0)
	l.now = func() time.Time { return clock }
	ctx := context.Background()
	for range 2 {
		if err := l.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := l.wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third request within the minute: %v", err)
	}
	clock = clock.Add(time.Minute)
	if err := l.wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestHoldFor(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	reset := strconv.FormatInt(now.Unix()+120, 10)
	for _, tc := range []struct {
		status int
		h      http.Header
		want   time.Duration
	}{
		{200, http.Header{"Ratelimit-Remaining": {"4999"}, "Ratelimit-Reset": {reset}}, 0},
		{200, http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {reset}}, 2 * time.Minute},
		{200, http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"1"}}, 0},
		{200, http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"x"}}, 0},
		{200, http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"9223372036854775807"}}, maxRetryAfter},
		{429, http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{500, http.Header{"Retry-After": {"3"}}, 0},
	} {
		if got := holdFor(tc.status, tc.h, now); got != tc.want {
			t.Errorf("%d %v: %s, want %s", tc.status, tc.h, got, tc.want)
		}
	}
}

func FuzzHoldFor(f *testing.F) {
	f.Add(200, "0", "1800000120", "")
	f.Add(429, "", "", "30")
	f.Fuzz(func(t *testing.T, status int, remaining, reset, retryAfter string) {
		h := http.Header{}
		h.Set("RateLimit-Remaining", remaining)
		h.Set("RateLimit-Reset", reset)
		h.Set("Retry-After", retryAfter)
		if d := holdFor(status, h, time.Unix(1_800_000_000, 0)); d < 0 || d > maxRetryAfter {
			t.Fatalf("%d %q %q %q: %s", status, remaining, reset, retryAfter, d)
		}
	})
}
