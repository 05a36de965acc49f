package ns

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGoLockedAvoidsMainThread: the runtime cannot discard the main
// thread, so a namespace must never be joined on it. The scheduler often
// offers it to new goroutines, which Go must refuse.
func TestGoAvoidsMainThread(t *testing.T) {
	for range 100 {
		onMain := make(chan bool)
		Go(func() { onMain <- unix.Gettid() == unix.Getpid() })
		if <-onMain {
			t.Fatal("Go ran f on the main thread")
		}
	}
}

func TestJoinOwnNamespaceNeedsNothing(t *testing.T) {
	errc := make(chan error, 1)
	Go(func() { errc <- Join(os.Getpid(), "net", "uts", "ipc") })
	if err := <-errc; err != nil {
		t.Fatalf("joining its own namespaces: %v", err)
	}
	errc2 := make(chan error, 1)
	Go(func() { errc2 <- Join(os.Getpid(), "mnt") })
	if err := <-errc2; err == nil {
		t.Error("an unknown namespace kind was accepted")
	}
}
