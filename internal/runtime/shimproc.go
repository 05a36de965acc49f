package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ShimProcess is a running shim as the daemon sees it.
type ShimProcess struct {
	Pid       int
	StartTime uint64 // from /proc/PID/stat, to tell it from a later process with the same pid
	InitPid   int    // the container's init process
	Exited    <-chan struct{}
}

// StartShim starts `exe shim dir` for the container described by
// dir/shim.json and waits until runc has started the container or failed.
func StartShim(ctx context.Context, exe, dir string) (*ShimProcess, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start shim: %w", err)
	}
	defer r.Close()
	logf, err := os.OpenFile(filepath.Join(dir, ShimLogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("start shim: %w", err)
	}
	cmd := exec.Command(exe, "shim", dir)
	// One P keeps the shim's memory and threads to the minimum.
	cmd.Env = []string{"GOMAXPROCS=1", "PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the shim
	// Its own session: signals for the daemon's terminal or process group
	// must not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	logf.Close()
	if err != nil {
		return nil, fmt.Errorf("start shim: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	p := &ShimProcess{Pid: cmd.Process.Pid, Exited: exited}
	p.StartTime, _ = ProcessStartTime(p.Pid)
	line, err := readLine(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("start shim: %w (see %s)", err, filepath.Join(dir, ShimLogFile))
	}
	status, rest, _ := strings.Cut(line, " ")
	switch status {
	case "ok":
		if p.InitPid, err = strconv.Atoi(rest); err != nil {
			return nil, fmt.Errorf("start shim: bad report %q", line)
		}
		return p, nil
	case "error":
		<-exited
		return nil, errors.New(rest)
	}
	return nil, fmt.Errorf("start shim: bad report %q", line)
}

func readLine(ctx context.Context, f *os.File) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(f).ReadString('\n')
		if err != nil && line == "" {
			err = errors.New("the shim exited without reporting")
		} else {
			err = nil
		}
		ch <- result{strings.TrimSpace(line), err}
	}()
	select {
	case res := <-ch:
		return res.line, res.err
	case <-ctx.Done():
		f.SetReadDeadline(time.Now())
		return "", ctx.Err()
	}
}

// AdoptShim watches a shim the daemon did not start (it started before the
// daemon's last restart). It fails if no such process exists any more.
func AdoptShim(pid int, startTime uint64, initPid int) (*ShimProcess, error) {
	exited, err := WatchExit(pid, startTime)
	if err != nil {
		return nil, err
	}
	return &ShimProcess{Pid: pid, StartTime: startTime, InitPid: initPid, Exited: exited}, nil
}

// ErrGone means the process exited (or its pid now names another process).
var ErrGone = errors.New("process is gone")

// WatchExit returns a channel closed when the process exits. It uses a
// pidfd, which names the process itself, not its pid, so a reused pid can
// not fool it; the start time check covers the moment before opening it.
func WatchExit(pid int, startTime uint64) (<-chan struct{}, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	if st, err := ProcessStartTime(pid); err != nil || st != startTime {
		unix.Close(fd)
		return nil, fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pidfd: %w", err)
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer f.Close()
		// The runtime's poller wakes us when the pidfd becomes readable,
		// which it does when the process exits: no thread is held per shim.
		rc.Read(func(fd uintptr) bool {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, 0)
			return err != nil || n > 0
		})
	}()
	return ch, nil
}

// ProcessStartTime returns the process's start time in clock ticks since
// boot (field 22 of /proc/PID/stat).
func ProcessStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: split
	// after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// ReadExit reads the exit status a shim left in dir, if any.
func ReadExit(dir string) (ExitStatus, bool) {
	var st ExitStatus
	if err := readJSONFile(filepath.Join(dir, ExitFile), &st); err != nil {
		return ExitStatus{}, false
	}
	return st, true
}

// WriteShimConfig writes dir/shim.json for the next shim.
func WriteShimConfig(dir string, cfg ShimConfig) error {
	return writeJSONFile(filepath.Join(dir, ShimConfigFile), cfg, false)
}

// ClearRun removes what the previous run of a container left (its exit
// status and pid file), before the next run starts.
func ClearRun(dir string) error {
	for _, f := range []string{ExitFile, InitPidFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
