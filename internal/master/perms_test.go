package master

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPermProblem(t *testing.T) {
	tests := []struct {
		mode     os.FileMode
		uid      int
		dir      bool
		wantText string // "" = fine
	}{
		{0o700, 0, true, ""},
		{0o600, 0, false, ""},
		{0o400, 0, false, ""},
		{0o755, 0, true, "is mode 0755: others can reach the master's key and state; the master refuses to run until you chmod 700"},
		{0o640, 0, false, "is mode 0640"},
		{0o604, 0, false, "chmod 600"},
		{0o600, 1000, false, "belongs to uid 1000, not to uid 0"},
		{0o600, -1, false, ""},
	}
	for _, tt := range tests {
		err := permProblem("/x", tt.mode, tt.uid, 0, tt.dir)
		if tt.wantText == "" && err != nil || tt.wantText != "" && (err == nil || !strings.Contains(err.Error(), tt.wantText)) {
			t.Errorf("permProblem(%o, uid %d, dir %v) = %v, want %q", tt.mode, tt.uid, tt.dir, err, tt.wantText)
		}
	}
}

// TestOpenRefusesOpenState: moat init makes the state private; the master
// refuses state others can read.
func TestOpenRefusesOpenState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Init(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"", "master_ed25519", PeerKeyFile, DBFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("after init %s: %v %v", f, fi.Mode(), err)
		}
	}
	m, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatalf("open private state: %v", err)
	}
	m.db.Close()
	for _, tc := range []struct {
		file string
		mode os.FileMode
	}{{"", 0o755}, {"master_ed25519", 0o644}, {DBFile, 0o644}} {
		path := filepath.Join(dir, tc.file)
		os.Chmod(path, tc.mode)
		if _, err := Open(Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("open with %s mode %o: %v; want a refusal naming it", path, tc.mode, err)
		}
		os.Chmod(path, map[bool]os.FileMode{true: 0o700, false: 0o600}[tc.file == ""])
	}
}
