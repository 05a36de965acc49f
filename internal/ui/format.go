package ui

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// ago is how long ago t was, short: 12s, 5m, 3h, 4d.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "–"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// shortDigest shortens a digest to 12 hex digits; a name (the master's
// "probe:1 (c9bf380f02b4)") is left as it is.
func shortDigest(d string) string {
	h, ok := strings.CutPrefix(d, "sha256:")
	if ok && len(h) > 12 {
		return h[:12]
	}
	return d
}

// statusOf is the HTTP status of an error from the master: its kind's.
func statusOf(err error) int {
	if errors.Is(err, errs.ErrUnavailable) {
		return http.StatusBadGateway
	}
	return errs.HTTPStatus(err)
}
