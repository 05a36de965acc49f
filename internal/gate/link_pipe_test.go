package gate

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPolledPipeSize: a link session's pipes are grown to linkPipeSize
// only when the per-user pipe limits do not apply (privileged); an
// unprivileged gate leaves them as sshd made them, not using up its
// user's pipe allowance.
func TestPolledPipeSize(t *testing.T) {
	sizes := func(dropCaps bool) (before, after int) {
		inR, inW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer inW.Close()
		defer outR.Close()
		before, err = unix.FcntlInt(inR.Fd(), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		var got sessionRW
		go func() {
			// Capabilities are per thread: dropped on this one only,
			// which then ends with the goroutine (never unlocked).
			runtime.LockOSThread()
			if dropCaps {
				var data [2]unix.CapUserData
				if err := unix.Capset(&unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}, &data[0]); err != nil {
					done <- err
					return
				}
			}
			got, _ = polled(sessionRW{inR, outW}).(sessionRW)
			done <- nil
		}()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		defer got.Reader.(*os.File).Close()
		defer got.Writer.(*os.File).Close()
		after, err = unix.FcntlInt(got.Reader.(*os.File).Fd(), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			t.Fatal(err)
		}
		out, err := unix.FcntlInt(got.Writer.(*os.File).Fd(), unix.F_GETPIPE_SZ, 0)
		if err != nil || out != after {
			t.Fatalf("stdout pipe of %d bytes (%v), stdin's %d", out, err, after)
		}
		return before, after
	}
	if !pipePrivileged() {
		t.Skip("needs CAP_SYS_RESOURCE or CAP_SYS_ADMIN (root)")
	}
	if _, after := sizes(false); after != linkPipeSize {
		t.Errorf("privileged: pipes of %d bytes, want %d", after, linkPipeSize)
	}
	if before, after := sizes(true); after != before {
		t.Errorf("unprivileged: pipes grown from %d to %d bytes", before, after)
	}
}
