package clouds

import (
	"errors"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

// TestOpenRefuses: what Open cannot open is refused naming the field.
func TestOpenRefuses(t *testing.T) {
	for _, c := range []struct {
		kind, endpoint, dir string
		field               string
	}{
		{"aws", "", "", "provider"},
		{"static", "", "", "provider"},
		{"", "", "", "provider"},
		{"hetzner", "ftp://x", "", "endpoint"},
		{"hetzner", "http://", "", "endpoint"},
		{"local", "", "", "local-dir"},
		{"local", "", "relative/dir", "local-dir"},
	} {
		_, err := Open(c.kind, "tok", c.endpoint, c.dir, "")
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Open(%q, endpoint %q, dir %q) = %v, want invalid naming %s", c.kind, c.endpoint, c.dir, err, c.field)
		}
	}
}
