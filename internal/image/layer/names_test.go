package layer

import "testing"

func TestWhiteoutKind(t *testing.T) {
	tests := []struct {
		name        string
		kind        whKind
		dir, hidden string
	}{
		{"a/b", notWhiteout, "", ""},
		{"a/x.wh.b", notWhiteout, "", ""},
		{".wh.top", whFile, ".", "top"},
		{"a/b/.wh.c", whFile, "a/b", "c"},
		{"a/.wh..hidden", whFile, "a", ".hidden"},
		{"a/.wh..", whFile, "a", "."},
		{"a/.wh..wh..opq", whDir, "a", ""},
		{".wh..wh..opq", whDir, ".", ""},
		{"a/.wh..wh.aufs", whSkip, "", ""},
		{".wh..wh.plnk/123.4", whSkip, "", ""},
		{"a/.wh..wh.orph/x/.wh.y", whSkip, "", ""},
	}
	for _, tt := range tests {
		kind, dir, hidden := whiteoutKind(tt.name)
		if kind != tt.kind || dir != tt.dir || hidden != tt.hidden {
			t.Errorf("whiteoutKind(%q) = %v, %q, %q; want %v, %q, %q", tt.name, kind, dir, hidden, tt.kind, tt.dir, tt.hidden)
		}
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"a/b", "a/b", true},
		{"./a/b/", "a/b", true},
		{"a//./b", "a/b", true},
		{"./", ".", true},
		{"...", "...", true},
		{"a/..b", "a/..b", true},
		{"", "", false},
		{"/a", "", false},
		{"..", "", false},
		{"a/..", "", false},
		{"a/../b", "", false},
	}
	for _, tt := range tests {
		got, err := cleanName(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("cleanName(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
