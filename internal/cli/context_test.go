package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContextCommands: contexts are added, listed, used and removed with
// the exit statuses scripts rely on; the file is the user's alone; a
// broken file or an unusable MOAT_MASTER fails commands with where and
// why, and nothing is changed.
func TestContextCommands(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	t.Setenv("MOAT_MASTER", "")
	t.Setenv("MOAT_MASTER_SOCKET", filepath.Join(t.TempDir(), "none.sock"))
	file := filepath.Join(cfg, "moat", "contexts")
	steps := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"context", "add", "prod", "admin@203.0.113.7:2222", "--tenant", "web"}, 0, "context prod", ""},
		{[]string{"context", "add", "prod", "admin@203.0.113.8"}, 2, "", `context "prod" exists`},
		{[]string{"context", "add", "evil", "-oProxyCommand=touch /tmp/x"}, 2, "", "unknown shorthand flag"},
		{[]string{"context", "add", "evil", "--", "-oProxyCommand=x"}, 2, "", "operator.dest"},
		{[]string{"context", "add", "local", "a@b"}, 2, "", "reserved"},
		{[]string{"context", "add", "lab", "lab-master"}, 0, "context lab", ""},
		{[]string{"context", "use", "nope"}, 3, "", `context "nope"`},
		{[]string{"context", "use", "prod"}, 0, "using prod", ""},
		{[]string{"context", "ls"}, 0, "*   prod    admin@203.0.113.7:2222", ""},
		{[]string{"context", "rm", "prod"}, 0, "", ""},
		{[]string{"context", "rm", "prod"}, 3, "", `context "prod"`},
		{[]string{"context", "ls", "--json"}, 0, `"name": "lab"`, ""},
	}
	for _, s := range steps {
		out, errOut, code := moat(t, s.args...)
		if code != s.code || !strings.Contains(out, s.stdout) || !strings.Contains(errOut, s.stderr) {
			t.Fatalf("moat %v: exit %d, stdout %q, stderr %q; want %d, %q, %q", s.args, code, out, errOut, s.code, s.stdout, s.stderr)
		}
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("contexts file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(file)
	if string(b) != "# moat contexts: written by moat context add|use|rm\ncontext lab lab-master\n" {
		t.Fatalf("contexts file:\n%s", b)
	}
	// No context in use: the local socket, as before.
	if _, errOut, code := moat(t, "ps"); code != 5 || !strings.Contains(errOut, "none.sock") {
		t.Errorf("ps on the local socket: exit %d, %s", code, errOut)
	}
	// A MOAT_MASTER that is neither a context nor a destination.
	t.Setenv("MOAT_MASTER", "-oProxyCommand=x")
	if _, errOut, code := moat(t, "ps"); code != 2 || !strings.Contains(errOut, "MOAT_MASTER") {
		t.Errorf("ps with a bad MOAT_MASTER: exit %d, %s", code, errOut)
	}
	t.Setenv("MOAT_MASTER", "")
	os.WriteFile(file, append(b, "use lab\nuse lab\n"...), 0o600)
	if _, errOut, code := moat(t, "ps"); code != 2 || !strings.Contains(errOut, file+": line 4: a second use") {
		t.Errorf("ps with a broken contexts file: exit %d, %s", code, errOut)
	}
	if _, _, code := moat(t, "context", "add", "x", "a@b"); code != 2 {
		t.Errorf("context add to a broken file: exit %d", code)
	}
	if now, _ := os.ReadFile(file); string(now) != string(b)+"use lab\nuse lab\n" {
		t.Errorf("a broken contexts file was changed:\n%s", now)
	}
}
