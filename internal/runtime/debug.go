package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/ns"
)

// Debugging from outside: a minimal image has no ps, ss or strace, so
// moat runs the node's own tools inside the container's pid, network, ipc
// and uts namespaces, but not its mount namespace: the tool and its
// libraries come from the node, and nothing is added to the container.

// DebugEnv is the environment debug tools get.
var DebugEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb"}

// StartDebug starts args (args[0] a program on the node, found in PATH) in
// the namespaces of the container whose init is initPid. exe is the moat
// binary: it runs `moat debug-exec`, which mounts a /proc of the
// container's pid namespace before exec'ing the tool.
func StartDebug(initPid int, exe string, args []string, stdin io.Reader, stdout, stderr io.Writer) (*exec.Cmd, error) {
	if len(args) == 0 {
		return nil, errs.Invalid("args", "no program to run")
	}
	tool, err := exec.LookPath(args[0])
	if err != nil {
		return nil, errs.Invalid("args[0]", "%q is not a program on the node: %v", args[0], err)
	}
	cmd := exec.Command(exe, append([]string{"debug-exec", "--", tool}, args[1:]...)...)
	cmd.Env = DebugEnv
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	// Its own process group, so ending the session ends what it started.
	// No Pdeathsig: it is tied to the creating thread, which exits at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: unix.CLONE_NEWNS, Setpgid: true}
	// Children the tool leaves behind must not hold the session open.
	cmd.WaitDelay = time.Second
	errc := make(chan error, 1)
	// setns changes only this thread, which the runtime discards,
	// namespaces and all, when the goroutine ends.
	ns.Go(func() { errc <- startInNamespaces(initPid, cmd) })
	if err := <-errc; err != nil {
		return nil, err
	}
	return cmd, nil
}

func startInNamespaces(pid int, cmd *exec.Cmd) error {
	if err := ns.Join(pid, "ipc", "uts", "net", "pid"); err != nil {
		return fmt.Errorf("debug: %w", err)
	}
	// The fork happens on this thread, so the child is born in the
	// container's pid namespace and inherits its net, ipc and uts.
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("debug: start %s: %w", cmd.Args[3], err)
	}
	return nil
}

// KillDebug ends a debug session's whole process group.
func KillDebug(cmd *exec.Cmd) {
	if cmd.Process != nil {
		unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	}
}

// RunDebugExec is `moat debug-exec -- TOOL ARGS`, run by StartDebug in the
// container's namespaces and a private copy of the node's mount namespace.
// It only returns on failure.
func RunDebugExec(args []string) error {
	if len(args) == 0 {
		return errors.New("debug-exec: no program")
	}
	// The node's /proc shows the node's processes; mount one for the
	// container's pid namespace (we are in it) so ps and friends see the
	// container. sysfs likewise for its network namespace.
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("debug-exec: mount /proc: %w", err)
	}
	unix.Mount("sysfs", "/sys", "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	// The tool lives in the node's filesystem, and its /proc/PID/root leads
	// there. The container's processes share its pid namespace and may run
	// as root. The kernel lets one process reach another's root only if
	// their uids and gids all match and the target is dumpable, and (the
	// capability rule) the target holds no capability the caller lacks.
	// The capability rule protects a tool that keeps its privileges; a tool
	// that drops them (setpriv, ping, tcpdump -Z) would match a root
	// container. A real gid differing from the effective one breaks the
	// match and makes the tool non-dumpable at exec, for it and its
	// children, while leaving it uid 0 with every capability.
	if err := syscall.Setresgid(NobodyID, 0, 0); err != nil {
		return fmt.Errorf("debug-exec: set gids: %w", err)
	}
	err := syscall.Exec(args[0], args, os.Environ())
	return fmt.Errorf("debug-exec: exec %s: %w", args[0], err)
}
