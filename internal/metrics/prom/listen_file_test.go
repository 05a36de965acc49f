package prom

import (
	"os"
	"path/filepath"
	"testing"
)

// TestListenKeepsAFile: a stale socket is replaced, but a path that
// names anything else (a mistyped --prometheus-listen pointing at the
// master's database, a directory) is refused and left as it was.
func TestListenKeepsAFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "state.db")
	if err := os.WriteFile(file, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen("unix:" + file); err == nil {
		ln.Close()
		t.Errorf("listened on a regular file's path")
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Errorf("the file after Listen: %q %v", b, err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen("unix:" + sub); err == nil {
		ln.Close()
		t.Errorf("listened on a directory's path")
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Errorf("the directory after Listen: %v", err)
	}
}
