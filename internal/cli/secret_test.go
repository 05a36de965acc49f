package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/secret"
)

// TestSecretCommands: the operator's key file is made once, private, and
// refused when others can read it; mistakes are usage errors; a master
// that cannot be reached changes nothing.
func TestSecretCommands(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "moat", "secrets.key")
	t.Setenv("MOAT_SECRETS_KEY", keyFile)
	t.Setenv("MOAT_MASTER_SOCKET", filepath.Join(dir, "none.sock"))
	t.Setenv("MOAT_MASTER", "")
	if out, errOut, code := moat(t, "secret", "init"); code != 0 || !strings.Contains(out, "age1") {
		t.Fatalf("secret init: %d %q %q", code, out, errOut)
	}
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want 0600", fi, err)
	}
	if di, _ := os.Stat(filepath.Dir(keyFile)); di.Mode().Perm() != 0o700 {
		t.Errorf("key directory %v, want 0700", di.Mode().Perm())
	}
	b, _ := os.ReadFile(keyFile)
	if keys, err := secret.ParseKeys(b); err != nil || len(keys) != 1 {
		t.Fatalf("key file: %v %v", keys, err)
	}
	file := filepath.Join(dir, "value")
	os.WriteFile(file, []byte("v"), 0o600)
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"init twice", []string{"secret", "init"}, 4, "made once"},
		{"missing name", []string{"secret", "set", "web"}, 2, ""},
		{"missing file", []string{"secret", "set", "web", "db", "--from-file", filepath.Join(dir, "nope")}, 2, "--from-file"},
		{"bad name", []string{"secret", "set", "web", "../db", "--from-file", file}, 2, "secret name"},
		{"master down", []string{"secret", "set", "web", "db", "--from-file", file}, 5, ""},
		{"bad app label", []string{"image", "build", "-o", filepath.Join(dir, "i.tar"), "--add", file + ":/v", "--entrypoint", "/v", "--app", "Web"}, 2, "--app"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := moat(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("moat %v: exit %d, stderr %q; want %d mentioning %q", tt.args, code, errOut, tt.code, tt.stderr)
			}
		})
	}
	if after, _ := os.ReadFile(keyFile); string(after) != string(b) {
		t.Errorf("the key file changed")
	}
	os.Chmod(keyFile, 0o644)
	if _, errOut, code := moat(t, "secret", "set", "web", "db", "--from-file", file); code != 2 || !strings.Contains(errOut, "chmod 600") {
		t.Errorf("a key file others can read: exit %d %q; want 2 naming the fix", code, errOut)
	}
}
