// Package ns runs code inside another process's namespaces: on an OS
// thread of its own, moved there with setns and thrown away afterwards.
// The node daemon uses it for health checks and debug sessions. And it
// dials a container's loopback (DialLoopback) for the gate and the node's
// links, moving a thread only for socket().
package ns

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Go runs f in a new goroutine locked to an OS thread that the Go runtime
// discards when f returns, so f may move the thread into other namespaces.
// The main thread is never used: the runtime cannot discard it, and
// /proc/PID/ns/* name the main thread's namespaces, so moving it would
// move the whole process as others see it.
func Go(f func()) {
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			f()
			return // still locked: the thread goes with the goroutine
		}
		// On the main thread: hold it, so that f's goroutine cannot start on
		// it, until that goroutine is locked to another thread.
		locked := make(chan struct{})
		Go(func() {
			close(locked)
			f()
		})
		<-locked
		runtime.UnlockOSThread()
	}()
}

var flags = map[string]int{
	"net": unix.CLONE_NEWNET, "ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS,
	"pid": unix.CLONE_NEWPID, "cgroup": unix.CLONE_NEWCGROUP,
}

// Join moves the calling thread, which must be locked (see Go), into pid's
// namespaces of the given kinds ("net", "ipc", "uts", "pid", "cgroup").
// A namespace the thread is already in is skipped, which needs no
// privilege. Errors wrap the underlying one (fs.ErrNotExist or ESRCH when
// the process is gone).
func Join(pid int, kinds ...string) error {
	for _, kind := range kinds {
		flag, ok := flags[kind]
		if !ok {
			return fmt.Errorf("join namespace: unknown kind %q", kind)
		}
		if err := join(pid, kind, flag); err != nil {
			return err
		}
	}
	return nil
}

func join(pid int, kind string, flag int) error {
	path := fmt.Sprintf("/proc/%d/ns/%s", pid, kind)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s namespace of pid %d: %w", kind, pid, err)
	}
	defer unix.Close(fd)
	var target, own unix.Stat_t
	if err := unix.Fstat(fd, &target); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if err := unix.Stat("/proc/thread-self/ns/"+kind, &own); err != nil {
		return fmt.Errorf("stat own %s namespace: %w", kind, err)
	}
	if target.Dev == own.Dev && target.Ino == own.Ino {
		return nil
	}
	if err := unix.Setns(fd, flag); err != nil {
		return fmt.Errorf("join %s namespace of pid %d: %w", kind, pid, err)
	}
	return nil
}
