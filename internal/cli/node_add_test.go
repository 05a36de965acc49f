package cli

import (
	"strings"
	"testing"
)

func TestSplitDest(t *testing.T) {
	tests := []struct {
		arg, dest string
		port      int
		err       string
	}{
		{"root@203.0.113.7", "root@203.0.113.7", 0, ""},
		{"root@203.0.113.7:2222", "root@203.0.113.7", 2222, ""},
		{"web-1", "web-1", 0, ""},
		{"web-1:22", "web-1", 22, ""},
		{"admin@vps.example.com:443", "admin@vps.example.com", 443, ""},
		{"root@2001:db8::1", "root@2001:db8::1", 0, ""},
		{"root@[2001:db8::1]:2222", "root@2001:db8::1", 2222, ""},
		{"root@[2001:db8::1]", "root@2001:db8::1", 0, ""},
		{"root@host:0", "", 0, "want 1-65535"},
		{"root@host:65536", "", 0, "want 1-65535"},
		{"root@host:ssh", "", 0, "want 1-65535"},
		{"root@:22", "", 0, "want 1-65535"},
		{"root@[::1]:x", "", 0, "want 1-65535"},
		{"root@[::1", "", 0, "want USER@[ADDRESS]:PORT"},
		{"root@", "", 0, "want USER@HOST"},
		{"@host", "", 0, "want USER@HOST"},
	}
	for _, tt := range tests {
		dest, port, err := splitDest(tt.arg)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.arg) {
				t.Errorf("%q: err %v, want one naming it and saying %q", tt.arg, err, tt.err)
			}
			continue
		}
		if err != nil || dest != tt.dest || port != tt.port {
			t.Errorf("%q: %q %d %v, want %q %d", tt.arg, dest, port, err, tt.dest, tt.port)
		}
	}
}
