// Package testcluster runs real moat processes for tests: it builds the
// moat binary and a probe program (once for all the test binaries of a
// tree, see buildPrefix), starts node daemons on real runc with their own
// state, and removes every process, mount and cgroup they made, even when
// a test fails. Nothing here is a fake: tests that use it need root and
// runc, and say so when either is missing.
package testcluster

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The binaries are built once per state of the tree, not once per test
// binary: into os.TempDir()/moat-test-bin-KEY, where KEY hashes what the
// build reads (the module's non-test Go files, go.mod, go.sum, the Go
// version and build settings). Every test binary of a `go test ./...`
// shares that build, the next run reuses it while the tree is unchanged,
// and each test binary removes the builds of other states that nothing
// uses. So after a run one directory is left, the build of the tree as it
// is, to be reused or removed by the next run (two, when the tree changed
// while the run was under way: the next run removes the stale one).
//
// TestMain is per package, and no hook runs when a test binary exits; so
// instead of removing its build, a test binary holds a shared flock on it
// for as long as it runs (the lock is released by the kernel when the
// process ends, however it ends), and a build is removed only under an
// exclusive one: never while a test binary uses it.
const buildPrefix = "moat-test-bin-"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	// buildLock is the shared lock on buildDir, held until the process
	// exits (a package variable: a collected *os.File would close it).
	buildLock *os.File
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

// binaries builds moat and the probe, or finds them built.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { buildDir, buildLock, buildErr = cachedBuild() })
	if buildErr != nil {
		t.Fatalf("build test binaries: %v", buildErr)
	}
	return buildDir
}

// Moat returns the path of a moat binary built from this tree.
func Moat(t testing.TB) string { return filepath.Join(binaries(t), "moat") }

// ProbeBinary returns the path of the static probe program.
func ProbeBinary(t testing.TB) string { return filepath.Join(binaries(t), "probe") }

// cachedBuild returns the build of the tree as it is, locked for use,
// building it if no one has; then it removes builds no one uses.
func cachedBuild() (string, *os.File, error) {
	root, env, err := goEnv()
	if err != nil {
		return "", nil, err
	}
	key, err := buildKey(root, env)
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Join(os.TempDir(), buildPrefix+key)
	for range 3 {
		lock, err := useBuild(dir)
		if err == nil && lock == nil {
			lock, err = build(root, dir)
		}
		if err != nil {
			return "", nil, err
		}
		if lock != nil {
			removeUnused(dir)
			return dir, lock, nil
		}
	}
	return "", nil, fmt.Errorf("build %s: removed as soon as built, three times", dir)
}

// useBuild takes a shared lock on the build in dir, if it is complete:
// nil, nil when there is none (or it was removed while we waited).
func useBuild(dir string) (*os.File, error) {
	lock, err := os.Open(filepath.Join(dir, "lock"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_SH); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	for _, bin := range []string{"moat", "probe"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			lock.Close()
			return nil, nil
		}
	}
	return lock, nil
}

// build builds the binaries into a directory of its own, locked, and
// renames it to dir. If another test binary got there first, its build
// stays and this one goes: nil, nil.
func build(root, dir string) (*os.File, error) {
	tmp, err := os.MkdirTemp(os.TempDir(), buildPrefix+"tmp-")
	if err != nil {
		return nil, err
	}
	lock, err := os.Create(filepath.Join(tmp, "lock"))
	if err == nil {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_SH)
	}
	if err == nil {
		err = goBuild(root, tmp)
	}
	if err == nil {
		if os.Rename(tmp, dir) == nil {
			return lock, nil // the lock file went with its directory
		}
		err = nil // dir exists: someone else's build
	}
	if lock != nil {
		lock.Close()
	}
	os.RemoveAll(tmp)
	return nil, err
}

func goBuild(root, out string) error {
	for _, b := range []struct{ out, pkg string }{
		{"moat", "./cmd/moat"}, {"probe", "./internal/testcluster/probe"},
	} {
		args := []string{"build", "-o", filepath.Join(out, b.out)}
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
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// removeUnused removes the builds other than keep that no test binary
// uses: each whose lock can be taken exclusively at once. A directory
// without a lock file (left by an older moat, or by a build killed at its
// very start) goes once it is an hour old.
func removeUnused(keep string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), buildPrefix+"*"))
	for _, d := range dirs {
		if d == keep {
			continue
		}
		lock, err := os.Open(filepath.Join(d, "lock"))
		if err != nil {
			if st, err := os.Stat(d); err == nil && time.Since(st.ModTime()) > time.Hour {
				os.RemoveAll(d)
			}
			continue
		}
		if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(d)
		}
		lock.Close()
	}
}

// goEnv returns the module's root and the go settings a build depends on.
func goEnv() (root, env string, err error) {
	out, err := exec.Command("go", "env", "GOMOD", "GOVERSION", "GOOS", "GOARCH", "GOFLAGS", "GOEXPERIMENT").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env: %w", err)
	}
	mod, env, _ := strings.Cut(string(out), "\n")
	if mod == "" || mod == os.DevNull {
		return "", "", fmt.Errorf("not inside the moat module")
	}
	return filepath.Dir(mod), env + "race=" + os.Getenv("MOAT_TEST_RACE"), nil
}

// buildKey hashes what a build of the module reads: env, and the path and
// content of every file of the module that goes into a binary.
func buildKey(root, env string) (string, error) {
	h := sha256.New()
	io.WriteString(h, env)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || path == filepath.Join(root, "bin")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !buildInput(name) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", strings.TrimPrefix(path, root), len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash the module: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func buildInput(name string) bool {
	switch {
	case name == "go.mod", name == "go.sum":
		return true
	case strings.HasSuffix(name, "_test.go"):
		return false
	}
	return strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".s")
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
