package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Runc drives the runc binary. moat never links libcontainer: the binary
// is the stable interface, and its version is the operator's choice.
type Runc struct {
	Binary string // path or name of runc
	Root   string // runc's state directory: one per node, so nodes sharing a kernel never collide
}

// State is what `runc state` reports.
type State struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"` // created, running, paused, stopped
}

// Errors runc reports that callers act on.
var (
	ErrNoContainer = errors.New("runc does not know the container")
	ErrNotRunning  = errors.New("container is not running")
)

func (r Runc) args(args ...string) []string {
	return append([]string{"--root", r.Root}, args...)
}

func (r Runc) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.Binary, r.args(args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		switch {
		case strings.Contains(msg, "does not exist") || strings.Contains(msg, "container not found"):
			return out, fmt.Errorf("runc %s: %s: %w", args[0], msg, ErrNoContainer)
		case strings.Contains(msg, "not running"):
			return out, fmt.Errorf("runc %s: %s: %w", args[0], msg, ErrNotRunning)
		}
		return out, fmt.Errorf("runc %s: %s: %w", args[0], msg, err)
	}
	return out, nil
}

// UpdateCPU sets a running container's CPU limit (its CFS quota).
func (r Runc) UpdateCPU(ctx context.Context, id string, milliCPU int64) error {
	quota, period := cpuQuota(milliCPU)
	_, err := r.run(ctx, "update", "--cpu-quota", strconv.FormatInt(quota, 10), "--cpu-period", strconv.FormatUint(period, 10), id)
	return err
}

// Kill sends a signal ("TERM", "KILL") to the container's init process.
func (r Runc) Kill(ctx context.Context, id, signal string) error {
	_, err := r.run(ctx, "kill", id, signal)
	return err
}

// Delete removes runc's state and the container's cgroup.
func (r Runc) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	_, err := r.run(ctx, append(args, id)...)
	return err
}

// State returns runc's view of a container.
func (r Runc) State(ctx context.Context, id string) (State, error) {
	out, err := r.run(ctx, "state", id)
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(out, &st); err != nil {
		return State{}, fmt.Errorf("runc state %s: %w", id, err)
	}
	return st, nil
}

// Version returns the first line of `runc --version`.
func (r Runc) Version(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, r.Binary, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("runc --version: %w", err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line), nil
}

// RunDetachedCmd is `runc run --detach`: create and start in one runc
// invocation. The container inherits the command's stdio, so the caller
// (the shim) owns the container's output pipes.
func (r Runc) RunDetachedCmd(id, bundle, pidFile, logFile string) *exec.Cmd {
	return exec.Command(r.Binary, r.args("--log", logFile, "--log-format", "json",
		"run", "--detach", "--pid-file", pidFile, "--bundle", bundle, id)...)
}

// lastError returns the last error runc wrote to its JSON log.
func lastError(logFile string) string {
	f, err := os.Open(logFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && (rec.Level == "error" || rec.Level == "fatal") {
			last = rec.Msg
		}
	}
	return last
}
