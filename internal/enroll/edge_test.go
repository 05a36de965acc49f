package enroll

import "testing"

func TestUnsetting(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"edge=true\n", ""},
		{"require-signed=true\n", "require-signed=true\n"},
		{"require-signed=true\nedge = true\n# note\nedge=false", "require-signed=true\n# note\n"},
	} {
		if got := unsetting(tc.in, "edge"); got != tc.want {
			t.Errorf("unsetting(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
