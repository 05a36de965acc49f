// Package testcluster runs real moat processes for tests: it builds the
// moat binary and a probe program once per test binary, starts node daemons
// on real runc with their own state, and removes every process, mount and
// cgroup they made, even when a test fails. Nothing here is a fake: tests
// that use it need root and runc, and say so when either is missing.
package testcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// RequireRoot skips the test unless it runs as root with runc installed:
// the node runtime needs both. CI installs runc and runs as root, so there
// these tests always run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs containers under runc (CI runs as root)")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("needs runc on PATH: apt-get install runc (CI installs it)")
	}
}

// binaries builds moat and the probe once per test binary.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "moat-test-bin-")
		if buildErr != nil {
			return
		}
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		for _, b := range []struct{ out, pkg string }{
			{"moat", "./cmd/moat"}, {"probe", "./internal/testcluster/probe"},
		} {
			args := []string{"build", "-o", filepath.Join(buildDir, b.out)}
			env := append(os.Environ(), "CGO_ENABLED=0")
			if os.Getenv("MOAT_TEST_RACE") != "" && b.out == "moat" {
				// The daemons under the race detector (it needs cgo); with
				// GORACE=halt_on_error=1 a race ends the process, and the test.
				args = append(args, "-race")
				env = append(os.Environ(), "CGO_ENABLED=1")
			}
			cmd := exec.Command("go", append(args, b.pkg)...)
			cmd.Dir = root
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build test binaries: %v", buildErr)
	}
	return buildDir
}

// Moat returns the path of a moat binary built from this tree.
func Moat(t testing.TB) string { return filepath.Join(binaries(t), "moat") }

// ProbeBinary returns the path of the static probe program.
func ProbeBinary(t testing.TB) string { return filepath.Join(binaries(t), "probe") }

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the moat module")
	}
	return filepath.Dir(mod), nil
}

// ProbeImage builds an OCI image (a layout tar in a temp dir) holding only
// the probe, as /probe, and returns its path.
func ProbeImage(t testing.TB, name string, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "probe.tar")
	args := append([]string{"image", "build", "-o", out, "--add", ProbeBinary(t) + ":/probe", "--entrypoint", "/probe", "--name", name}, extra...)
	cmd := exec.Command(Moat(t), args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("moat image build: %v\n%s", err, b)
	}
	return out
}
