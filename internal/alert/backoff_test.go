package alert

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{1, 0, 250 * time.Millisecond},
		{1, 0.999999, 500 * time.Millisecond},
		{2, 0, 500 * time.Millisecond},
		{3, 0.5, 1500 * time.Millisecond},
		{7, 0, 15 * time.Second},
		{8, 0, 15 * time.Second},
		{100, 1, 30 * time.Second},
		{0, -1, 250 * time.Millisecond},
	} {
		if got := Backoff(tc.attempt, tc.jitter); got.Round(time.Millisecond) != tc.want {
			t.Errorf("Backoff(%d, %v) = %s, want %s", tc.attempt, tc.jitter, got, tc.want)
		}
	}
}
