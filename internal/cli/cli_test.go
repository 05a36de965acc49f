package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// moat runs the real binary and returns stdout, stderr and the exit status.
func moat(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return moatIn(t, "", args...)
}

// TestRuntimeCommands drives a node through the CLI and checks the
// contract scripts rely on: --json output and exit statuses.
func TestRuntimeCommands(t *testing.T) {
	n := testcluster.StartNode(t)
	image := testcluster.ProbeImage(t, "probe:1")
	rt := func(args ...string) (string, string, int) {
		return moat(t, append([]string{"runtime", "--socket", n.Socket}, args...)...)
	}
	if out, errOut, code := rt("import", image); code != 0 || !strings.Contains(out, "probe:1") {
		t.Fatalf("import: %d %q %q", code, out, errOut)
	}
	if out, _, code := rt("run", "--name", "web", "--port", "http=8080", "probe:1", "--", "serve"); code != 0 || strings.TrimSpace(out) != "web" {
		t.Fatalf("run: %d %q", code, out)
	}
	out, _, code := rt("ps", "--json")
	var cs []nodeapi.Container
	if code != 0 || json.Unmarshal([]byte(out), &cs) != nil || len(cs) != 1 || cs[0].ID != "web" {
		t.Fatalf("ps --json: %d %q", code, out)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"debug passes the tool's exit status", []string{"debug", "web", "--", "false"}, 1, ""},
		{"invalid size", []string{"run", "--memory", "12XB", "probe:1"}, 2, "--memory"},
		{"unknown flag", []string{"ps", "--colour"}, 2, "unknown flag"},
		{"unknown container", []string{"rm", "nobody"}, 3, "not found"},
		{"unknown image", []string{"run", "nope:1"}, 3, "nope:1"},
		{"duplicate name", []string{"run", "--name", "web", "probe:1"}, 4, "already exists"},
		{"remove a running container", []string{"rm", "web"}, 4, "stop it first"},
		{"daemon not running", []string{"--socket", "/nonexistent.sock", "ps"}, 5, "hint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := rt(tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("moat runtime %v: exit %d, stderr %q; want %d mentioning %q", tt.args, code, errOut, tt.code, tt.stderr)
			}
		})
	}
	if _, _, code := rt("rm", "-f", "web"); code != 0 {
		t.Errorf("rm -f: exit %d", code)
	}
}

// TestImageLintStrict: lint finds a shell by path, and --strict fails.
func TestImageLintStrict(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	os.WriteFile(app, []byte("#!/bin/true\n"), 0o755)
	clean := filepath.Join(dir, "clean.tar")
	dirty := filepath.Join(dir, "dirty.tar")
	if _, e, code := moat(t, "image", "build", "-o", clean, "--add", app+":/app", "--entrypoint", "/app"); code != 0 {
		t.Fatalf("build: %s", e)
	}
	if _, e, code := moat(t, "image", "build", "-o", dirty, "--add", app+":/app", "--add", app+":/bin/sh", "--entrypoint", "/app"); code != 0 {
		t.Fatalf("build: %s", e)
	}
	if out, _, code := moat(t, "image", "lint", "--strict", clean); code != 0 || !strings.Contains(out, "minimal") {
		t.Errorf("lint of a minimal image: exit %d %q", code, out)
	}
	out, _, code := moat(t, "image", "lint", "--strict", "--json", dirty)
	if code != 1 || !strings.Contains(out, `"/bin/sh"`) || !strings.Contains(out, `"shell"`) {
		t.Errorf("lint --strict of an image with /bin/sh: exit %d %q", code, out)
	}
	if _, _, code := moat(t, "image", "lint", dirty); code != 0 {
		t.Errorf("lint without --strict should report and succeed, exit %d", code)
	}
	// Same inputs, same digest.
	again := filepath.Join(dir, "again.tar")
	moat(t, "image", "build", "-o", again, "--add", app+":/app", "--entrypoint", "/app")
	a, _ := os.ReadFile(clean)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("two builds from the same inputs differ")
	}
}

// TestImportDirAndLintRef: an OCI layout directory imports like its tar,
// and lint finds an image by reference in a node's store.
func TestImportDirAndLintRef(t *testing.T) {
	n := testcluster.StartNode(t)
	dir := filepath.Join(t.TempDir(), "layout")
	os.MkdirAll(dir, 0o755)
	if out, err := exec.Command("tar", "-xf", testcluster.ProbeImage(t, "probe:dir"), "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("untar: %v %s", err, out)
	}
	out, errOut, code := moat(t, "runtime", "--socket", n.Socket, "import", "--json", dir)
	var imgs []nodeapi.Image
	if code != 0 || json.Unmarshal([]byte(out), &imgs) != nil || len(imgs) != 1 || imgs[0].Name != "probe:dir" {
		t.Fatalf("import a layout directory: exit %d %q %q", code, out, errOut)
	}
	out, errOut, code = moat(t, "image", "lint", "--strict", "--root", n.Root, "probe:dir")
	if code != 0 || !strings.Contains(out, "minimal") {
		t.Errorf("lint by reference: exit %d %q %q", code, out, errOut)
	}
	if _, errOut, code := moat(t, "image", "lint", "--root", n.Root, "absent:1"); code != 3 {
		t.Errorf("lint of an unknown reference: exit %d %q, want 3", code, errOut)
	}
}

// TestUsageErrors: every mistake on the command line exits 2 and names the
// usage of the command meant, before anything is asked of a master or a
// node.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args  []string
		error string // a part of stderr's first line
		usage string // the hint's usage line
	}{
		{[]string{"history"}, "accepts 1 arg(s), received 0", "usage: moat history APP"},
		{[]string{"ps", "a", "b"}, "accepts at most 1 arg(s), received 2", "usage: moat ps [APP]"},
		{[]string{"rollback"}, "accepts between 1 and 2 arg(s)", "usage: moat rollback APP [REVISION]"},
		{[]string{"scale", "a=1", "b=2"}, "accepts 1 arg(s), received 2", "usage: moat scale APP=N"},
		{[]string{"apps", "extra"}, `unknown command "extra" for "moat apps"`, "usage: moat apps"},
		{[]string{"node", "cordon"}, "accepts 1 arg(s), received 0", "usage: moat node cordon NODE"},
		{[]string{"dev", "kill"}, "accepts 1 arg(s), received 0", "usage: moat dev kill NODE"},
		{[]string{"runtime", "logs"}, "accepts 1 arg(s), received 0", "usage: moat runtime logs"},
		{[]string{"deploy"}, `required flag(s) "file" not set`, "usage: moat deploy -f APP.yaml"},
		{[]string{"apps", "--colour"}, "unknown flag: --colour", "usage: moat apps"},
		{[]string{"node", "ls", "-x"}, "unknown shorthand flag: 'x'", "usage: moat node ls"},
		{[]string{"logs", "hello", "--tail"}, "flag needs an argument: --tail", "usage: moat logs APP"},
		{[]string{"bogus"}, `unknown command "bogus" for "moat"`, "usage: moat COMMAND"},
		{[]string{"node", "bogus"}, `unknown command "bogus" for "moat node"`, "usage: moat node COMMAND"},
		{[]string{"dev", "dwon"}, `unknown command "dwon" for "moat dev" (did you mean down?)`, "usage: moat dev COMMAND"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := moat(t, tt.args...)
			first, hint, _ := strings.Cut(errOut, "\n")
			if code != 2 || out != "" || !strings.Contains(first, tt.error) || !strings.HasPrefix(hint, "hint: "+tt.usage) {
				t.Errorf("moat %v: exit %d, stdout %q, stderr %q\nwant exit 2, an error with %q, then hint: %s",
					tt.args, code, out, errOut, tt.error, tt.usage)
			}
		})
	}
	// A command that only groups others shows its help when run alone.
	if out, errOut, code := moat(t, "node"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("moat node: exit %d, stdout %q, stderr %q; want its help", code, out, errOut)
	}
}
