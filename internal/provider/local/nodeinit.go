package local

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// NodeInit is `moat dev node-init --netns NAME --dir DIR -- PROGRAM ARGS`,
// started in a mount namespace of its own: it enters the node's network
// namespace, bind-mounts the node's private directories over the
// machine's, and execs the program (the node's sshd). Everything the sshd
// starts — the gate, the node daemon, shims — inherits the view. (Not `ip
// netns exec`: it remounts /sys, hiding the cgroup hierarchies runc needs.)
func NodeInit(netns, dir, hostname string, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("node-init: no program")
	}
	// Its own uts namespace (made with the mount one): a node has a name.
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return fmt.Errorf("node-init: set hostname: %w", err)
	}
	// setns changes this thread only, and exec keeps only this thread.
	runtime.LockOSThread()
	fd, err := unix.Open(filepath.Join("/run/netns", netns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("node-init: open netns %s: %w", netns, err)
	}
	err = unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("node-init: enter netns %s: %w", netns, err)
	}
	// Mounts made here must not leak into the machine's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("node-init: make / private: %w", err)
	}
	// A cloud machine's /etc/hostname is its own (firstboot writes it):
	// the machine's stays untouched. (Before /tmp, where dir may be, is
	// covered.)
	if hn := filepath.Join(dir, hostnameFile); fileExists(hn) {
		if !fileExists("/etc/hostname") {
			return fmt.Errorf("node-init: this machine has no /etc/hostname to mount the node's over")
		}
		if err := unix.Mount(hn, "/etc/hostname", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("node-init: bind /etc/hostname: %w", err)
		}
	}
	for _, d := range privateDirs {
		if err := os.MkdirAll(d.target, 0o755); err != nil {
			return fmt.Errorf("node-init: %w", err)
		}
		if err := unix.Mount(filepath.Join(dir, d.sub), d.target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("node-init: bind %s: %w", d.target, err)
		}
	}
	return syscall.Exec(args[0], args, os.Environ())
}

// hostnameFile is a cloud machine's /etc/hostname, in its directory.
const hostnameFile = "etc-hostname"

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
