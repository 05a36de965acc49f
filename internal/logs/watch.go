package logs

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// watcher wakes a follower when something changes in the log directory.
// Events are not decoded: any of them means "look again".
type watcher struct {
	f    *os.File
	wake chan struct{}
	done chan struct{}
}

const watchMask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE

// watchDir starts watching dir with inotify.
func watchDir(dir string) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch logs: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, watchMask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch logs %s: %w", dir, err)
	}
	// A non-blocking descriptor goes through the runtime poller, so Close
	// interrupts a pending Read.
	w := &watcher{
		f:    os.NewFile(uintptr(fd), "inotify"),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	go w.run()
	return w, nil
}

func (w *watcher) run() {
	defer close(w.done)
	buf := make([]byte, 4096)
	for {
		if _, err := w.f.Read(buf); err != nil {
			return
		}
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// close stops the watcher and waits for its goroutine.
func (w *watcher) close() {
	w.f.Close()
	<-w.done
}
