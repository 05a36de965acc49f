package cli

import (
	"errors"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

// TestLoopbackOnly: moat ui listens on a loopback IP and nowhere else.
func TestLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:0": true, "127.0.0.1:8900": true, "[::1]:0": true, "127.1.2.3:80": true,
		"0.0.0.0:0": false, ":0": false, "[::]:0": false, "localhost:0": false, "192.168.1.2:0": false, "127.0.0.1": false,
	} {
		err := loopbackOnly(addr)
		if (err == nil) != ok || err != nil && !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("loopbackOnly(%q) = %v", addr, err)
		}
	}
}
