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
		{"hetzner", "http://127.0.0.1:1", "", ""}, // no token: ErrAuth below
	} {
		if c.field == "" {
			continue
		}
		_, err := Open(c.kind, "tok", c.endpoint, c.dir, "")
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Open(%q, endpoint %q, dir %q) = %v, want invalid naming %s", c.kind, c.endpoint, c.dir, err, c.field)
		}
	}
}

// TestOpenKinds: each cloud opens on its kind (pointed at an endpoint
// that is never called); without a token it is refused.
func TestOpenKinds(t *testing.T) {
	for _, kind := range []string{"digitalocean", "hetzner"} {
		p, err := Open(kind, "secret-token-123", "http://127.0.0.1:1", "", "")
		if err != nil || p.Kind() != kind {
			t.Errorf("Open(%s) = %v, %v", kind, p, err)
		}
		if _, err := Open(kind, "", "http://127.0.0.1:1", "", ""); err == nil {
			t.Errorf("Open(%s) without a token: no error", kind)
		}
	}
}

// TestOpenLocal: a local cloud opens on its state directory (nothing is
// made at open but the directory: the bridge comes with the first server).
func TestOpenLocal(t *testing.T) {
	dir := t.TempDir()
	p, err := Open("local", "", "", dir, "/usr/local/bin/moat")
	if err != nil || p.Kind() != "local" {
		t.Fatalf("Open(local) = %v, %v", p, err)
	}
	types, err := p.Types(t.Context())
	if err != nil || len(types) == 0 {
		t.Errorf("local types: %v %v", types, err)
	}
	if _, err := Open("local", "", "", dir, ""); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("Open(local) without moat: %v", err)
	}
}
