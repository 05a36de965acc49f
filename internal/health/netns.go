package health

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/ns"
)

// nsThread is a goroutine locked to an OS thread that has joined a
// process's network namespace. It runs the checks sent to it one at a time,
// so every socket it creates lives in that namespace.
type nsThread struct {
	pidfd int // the process, to notice when it exits
	reqs  chan request
	done  chan struct{}
}

type request struct {
	ctx   context.Context
	check Check
	reply chan error
}

// enter starts a thread in pid's network namespace.
func enter(pid int) (*nsThread, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, gone(pid, err)
	}
	t := &nsThread{pidfd: pidfd, reqs: make(chan request), done: make(chan struct{})}
	ready := make(chan error, 1)
	ns.Go(func() { t.loop(pid, ready) })
	if err := <-ready; err != nil {
		unix.Close(pidfd)
		return nil, err
	}
	// The pidfd was opened before /proc/pid/ns/net: if the process is still
	// alive now, the pid was not reused in between and we joined its namespace.
	if !t.alive() {
		t.close()
		return nil, fmt.Errorf("pid %d: %w", pid, ErrExited)
	}
	return t, nil
}

func (t *nsThread) loop(pid int, ready chan<- error) {
	defer close(t.done)
	if err := joinNetns(pid); err != nil {
		ready <- err
		return
	}
	tid := unix.Gettid()
	ready <- nil
	for req := range t.reqs {
		req.reply <- check(req.ctx, req.check, tid)
	}
}

// check runs c on the namespace thread.
func (t *nsThread) check(ctx context.Context, c Check) error {
	reply := make(chan error, 1)
	t.reqs <- request{ctx: ctx, check: c, reply: reply}
	return <-reply
}

// alive reports whether the process has not exited yet.
func (t *nsThread) alive() bool {
	fds := []unix.PollFd{{Fd: int32(t.pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err != nil || n == 0 || fds[0].Revents&unix.POLLIN == 0
}

// close ends the thread and waits for it.
func (t *nsThread) close() {
	close(t.reqs)
	<-t.done
	unix.Close(t.pidfd)
}

// joinNetns moves the calling thread, which must be locked, into pid's
// network namespace.
func joinNetns(pid int) error {
	if err := ns.Join(pid, "net"); err != nil {
		if errors.Is(err, unix.ESRCH) || errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pid %d: %w", pid, ErrExited)
		}
		return err
	}
	return nil
}

// gone maps "no such process" errors to ErrExited.
func gone(pid int, err error) error {
	if errors.Is(err, unix.ESRCH) || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pid %d: %w", pid, ErrExited)
	}
	return fmt.Errorf("open pid %d: %w", pid, err)
}
