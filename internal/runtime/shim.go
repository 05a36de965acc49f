package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/logs"
)

// The shim: one small process per running container, started by the node
// daemon and independent of it. It runs `runc run --detach` with the
// container's stdout and stderr on pipes it owns, becomes the container's
// parent (child subreaper), copies its output into the rotating log files,
// and when the container exits writes the exit status to exit.json. A
// kill -9 of the daemon touches none of this; the restarted daemon finds the
// shim by pid, or its exit.json if the container ended meanwhile.

// Files in a container's directory.
const (
	ShimConfigFile = "shim.json"
	ExitFile       = "exit.json"
	InitPidFile    = "init.pid"
	RuncLogFile    = "runc.log"
	ShimLogFile    = "shim.log"
)

// ShimConfig is what the daemon tells a shim, in shim.json.
type ShimConfig struct {
	ID          string `json:"id"`
	Bundle      string `json:"bundle"`
	Runc        Runc   `json:"runc"`
	LogDir      string `json:"logDir"`
	LogMaxSize  int64  `json:"logMaxSize"`
	LogMaxFiles int    `json:"logMaxFiles"`
	CgroupsPath string `json:"cgroupsPath"`
}

// ExitStatus is how one run of a container ended, in exit.json.
type ExitStatus struct {
	Pid       int       `json:"pid,omitempty"`
	Code      int       `json:"code"`
	Signal    string    `json:"signal,omitempty"`
	OOMKilled bool      `json:"oomKilled,omitempty"`
	Error     string    `json:"error,omitempty"` // why it never started, or why the node ended it
	Started   time.Time `json:"started,omitzero"`
	Finished  time.Time `json:"finished"`
}

// shimReadyFD is the pipe on which the shim tells the daemon "ok PID" or
// "error MESSAGE" once runc has returned.
const shimReadyFD = 3

// RunShim is the shim's main: `moat shim DIR`. It returns the exit code.
func RunShim(dir string) int {
	// GOMAXPROCS=1 is for the shim's own runtime; runc, a Go program
	// too, must not inherit it (it would start the container slower).
	os.Unsetenv("GOMAXPROCS")
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("dir", dir)
	unix.CloseOnExec(shimReadyFD) // runc and the container must not inherit it
	ready := os.NewFile(shimReadyFD, "ready")
	var cfg ShimConfig
	if err := readJSONFile(filepath.Join(dir, ShimConfigFile), &cfg); err != nil {
		fmt.Fprintf(ready, "error %s\n", oneLine(err.Error()))
		log.Error("shim config", "err", err)
		return 1
	}
	log = log.With("container", cfg.ID)
	// The daemon's terminal and service manager signals are not for us.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGPIPE)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Error("become subreaper", "err", err)
	}
	st := runContainer(dir, cfg, ready, log)
	if err := writeJSONFile(filepath.Join(dir, ExitFile), st, true); err != nil {
		log.Error("write exit status", "err", err)
		return 1
	}
	return 0
}

func runContainer(dir string, cfg ShimConfig, ready *os.File, log *slog.Logger) ExitStatus {
	defer ready.Close()
	lw, err := logs.NewWriter(cfg.LogDir, cfg.LogMaxSize, cfg.LogMaxFiles)
	if err != nil {
		return startFailed(ready, fmt.Sprintf("open logs: %v", err))
	}
	defer lw.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return startFailed(ready, err.Error())
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return startFailed(ready, err.Error())
	}
	var copies sync.WaitGroup
	for _, p := range []struct {
		r    *os.File
		name string
	}{{outR, "stdout"}, {errR, "stderr"}} {
		copies.Add(1)
		go func() {
			defer copies.Done()
			w := lw.Stream(p.name)
			io.Copy(w, p.r)
			w.Close()
			p.r.Close()
		}()
	}
	cmd := cfg.Runc.RunDetachedCmd(cfg.ID, cfg.Bundle, filepath.Join(dir, InitPidFile), filepath.Join(dir, RuncLogFile))
	cmd.Stdout, cmd.Stderr = outW, errW
	started := time.Now().UTC()
	runErr := cmd.Run()
	outW.Close()
	errW.Close()
	if runErr != nil {
		msg := lastError(filepath.Join(dir, RuncLogFile))
		if msg == "" {
			msg = runErr.Error()
		}
		st := startFailed(ready, msg)
		copies.Wait()
		cfg.Runc.Delete(context.Background(), cfg.ID, true)
		return st
	}
	pid, err := readPidFile(filepath.Join(dir, InitPidFile))
	if err != nil {
		return startFailed(ready, err.Error())
	}
	fmt.Fprintf(ready, "ok %d\n", pid)
	ready.Close()
	// From here on the shim only copies and waits, for days: hand back
	// what starting up used. There is one shim per container.
	debug.FreeOSMemory()
	ws := reap(pid, log)
	// The pid namespace died with its init, so every writer of the pipes is
	// gone and the copies end; the bound is for the host-pid case only.
	waitTimeout(&copies, 10*time.Second)
	st := ExitStatus{Pid: pid, Started: started, Finished: time.Now().UTC(), OOMKilled: OOMKills(cfg.CgroupsPath) > 0}
	if ws.Signaled() {
		st.Signal = unix.SignalName(ws.Signal())
		st.Code = 128 + int(ws.Signal())
	} else {
		st.Code = ws.ExitStatus()
	}
	if err := cfg.Runc.Delete(context.Background(), cfg.ID, true); err != nil {
		log.Warn("runc delete", "err", err)
	}
	return st
}

func startFailed(ready *os.File, msg string) ExitStatus {
	fmt.Fprintf(ready, "error %s\n", oneLine(msg))
	return ExitStatus{Code: -1, Error: msg, Finished: time.Now().UTC()}
}

// reap waits for the container's init, reaping any other process the
// kernel reparents to us on the way.
func reap(pid int, log *slog.Logger) unix.WaitStatus {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			log.Error("wait for container", "err", err)
			return ws
		}
		if got == pid {
			return ws
		}
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", path, b)
	}
	return pid, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSONFile writes atomically: a reader sees the old file or the new,
// never half of one. With sync it is also on disk before the rename, so a
// power cut cannot lose it (exit statuses; not the per-start config).
func writeJSONFile(path string, v any, sync bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
