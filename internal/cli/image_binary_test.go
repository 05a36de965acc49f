package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/image/ldso/ldsotest"
	"github.com/moatcloud/moat/internal/image/lint"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// moatIn runs the real binary in dir and returns stdout, stderr and the
// exit status.
func moatIn(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(testcluster.Moat(t), args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &ee):
		return out.String(), errOut.String(), ee.ExitCode()
	}
	t.Fatalf("moat %v: %v", args, err)
	return "", "", 0
}

// buildGreet builds the program ldsotest.Greet makes into an image, with
// --add-binary or plain --add, from the directory gcc built it in, and
// returns the image's path.
func buildGreet(t *testing.T, how string) string {
	t.Helper()
	src := filepath.Dir(filepath.Dir(ldsotest.Greet(t)))
	out := filepath.Join(t.TempDir(), "greet.tar")
	if _, errOut, code := moatIn(t, src, "image", "build", "-o", out, how, "bin/greet:/app/bin/greet",
		"--entrypoint", "/app/bin/greet", "--name", "greet:1", "--", "moat"); code != 0 {
		t.Fatalf("image build %s: exit %d: %s", how, code, errOut)
	}
	return out
}

// TestImageAddBinary: a program gcc linked against a library of its own,
// added as a plain file, gives an image lint calls broken, naming the
// library, without --strict; added with --add-binary, a minimal image
// that is the same on every build, with the arguments given after --.
func TestImageAddBinary(t *testing.T) {
	plain := buildGreet(t, "--add")
	out, errOut, code := moat(t, "image", "lint", plain)
	if code != 1 || !strings.Contains(out, "libgreet.so") || !strings.Contains(errOut, "/app/bin/greet needs libgreet.so") {
		t.Errorf("lint of a program without its libraries: exit %d\n%s%s", code, out, errOut)
	}
	out, _, _ = moat(t, "image", "lint", "--json", plain)
	var findings []lint.Finding
	if err := json.Unmarshal([]byte(out), &findings); err != nil {
		t.Fatalf("lint --json: %v\n%s", err, out)
	}
	if want := (lint.Finding{Path: "/app/bin/greet", Category: lint.MissingLibrary, Name: "libgreet.so"}); !slices.Contains(findings, want) {
		t.Errorf("lint --json = %+v, want %+v among them", findings, want)
	}

	full := buildGreet(t, "--add-binary")
	if out, errOut, code := moat(t, "image", "lint", "--strict", full); code != 0 || !strings.Contains(out, "minimal") {
		t.Errorf("lint --strict of an image built with --add-binary: exit %d\n%s%s", code, out, errOut)
	}
	if again := buildGreet(t, "--add-binary"); !bytes.Equal(readFile(t, full), readFile(t, again)) {
		t.Error("two builds of the same program differ")
	}
	cfg := archiveImage(t, full).Config.Config
	if diff := cmp.Diff([][]string{{"/app/bin/greet"}, {"moat"}}, [][]string{cfg.Entrypoint, cfg.Cmd}); diff != "" {
		t.Errorf("entrypoint and cmd (-want +got):\n%s", diff)
	}
}

func TestImageBuildArguments(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	if err := os.WriteFile(app, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := []string{"image", "build", "-o", filepath.Join(dir, "out.tar"), "--add", app + ":/app", "--entrypoint", "/app"}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"arguments after --", []string{"--", "run", "--config", "/etc/app.json"}, 0, ""},
		{"--cmd alone", []string{"--cmd", "run", "--cmd", "--verbose"}, 0, ""},
		{"an argument before --", []string{"run"}, 2, `unexpected argument "run": give the default arguments after --`},
		{"--cmd and --", []string{"--cmd", "run", "--", "serve"}, 2, "both with --cmd (run) and after -- (serve)"},
		{"--add-binary of a relative path without DST", []string{"--add-binary", "bin/app"}, 2, "give where it goes in the image, e.g. bin/app:/app"},
		{"--add-binary of a script", []string{"--add-binary", app + ":/bin/app"}, 2, "not an ELF program; add other files with --add"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := moatIn(t, dir, append(slices.Clone(base), tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("moat %v: exit %d, stderr %q; want %d mentioning %q", tt.args, code, errOut, tt.code, tt.stderr)
			}
		})
	}
	if cmd := archiveImage(t, filepath.Join(dir, "out.tar")).Config.Config.Cmd; !slices.Equal(cmd, []string{"run", "--verbose"}) {
		t.Errorf("cmd of the last image built = %q, want run --verbose", cmd)
	}
}

// TestImageLintDefaultsToMasterStore: on the master's host, lint finds a
// reference in the master's store without --root.
func TestImageLintDefaultsToMasterStore(t *testing.T) {
	dir := t.TempDir()
	store, err := image.Open(filepath.Join(dir, "images"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(testcluster.ProbeImage(t, "probe:master"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := store.Import(context.Background(), f, ""); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testcluster.Moat(t), "image", "lint", "--strict", "probe:master")
	cmd.Env = append(os.Environ(), "MOAT_MASTER_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "minimal") {
		t.Errorf("lint by reference in the master's store: %v\n%s", err, out)
	}
	if _, errOut, code := moat(t, "image", "lint", "--root", filepath.Join(dir, "nowhere"), "probe:master"); code == 0 || !strings.Contains(errOut, "nowhere") {
		t.Errorf("lint with --root elsewhere: exit %d %q, want a failure naming the directory", code, errOut)
	}
}

// TestImageAddBinaryRuns runs the program built in with --add-binary in a
// real container on a real node: its loader finds everything it needs.
func TestImageAddBinaryRuns(t *testing.T) {
	n := testcluster.StartNode(t)
	full := buildGreet(t, "--add-binary")
	f, err := os.Open(full)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.Client.ImportImage(ctx, f, ""); err != nil {
		t.Fatalf("import: %v", err)
	}
	c, err := n.Client.CreateContainer(ctx, nodeapi.ContainerSpec{Name: "greet", Image: "greet:1"}, true)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var lines []string
	err = n.Client.Logs(ctx, c.ID, nodeapi.LogOptions{Follow: true, Tail: -1}, func(e nodeapi.LogEntry) error {
		lines = append(lines, e.Stream+": "+e.Line)
		return nil
	})
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	if want := []string{"stdout: " + ldsotest.GreetOutput}; !slices.Equal(lines, want) {
		t.Errorf("output %q, want %q\nnode log:\n%s", lines, want, n.Log())
	}
	if c, err := n.Client.Container(ctx, c.ID); err != nil || c.ExitCode == nil || *c.ExitCode != 0 {
		t.Errorf("container after it ran: %+v, %v; want exit code 0", c, err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// archiveImage reads the one image in the archive at p.
func archiveImage(t *testing.T, p string) image.Image {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ar, err := image.OpenArchive(f, t.TempDir())
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer ar.Close()
	if imgs := ar.Images(); len(imgs) == 1 {
		return imgs[0]
	}
	t.Fatalf("%s holds %d images, want 1", p, len(ar.Images()))
	return image.Image{}
}
