package testcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/provider/local"
)

// Clouds of killed test runs are swept by the next run.
const cloudGlob = "/tmp/moat-cloud-*"

// A cloud this test process or its children (a master, moat pool image)
// open belongs to it: swept only once it is gone.
func init() {
	if os.Getenv(local.OwnerEnv) == "" {
		os.Setenv(local.OwnerEnv, strconv.Itoa(os.Getpid()))
	}
}

// NewCloud opens a local cloud (provider/local's Cloud) for a test, and
// destroys every server, image, namespace, link, cgroup and process it
// made when the test ends, fails, or is interrupted.
func NewCloud(t testing.TB) *local.Cloud {
	t.Helper()
	RequireRoot(t)
	for _, bin := range []string{"/usr/sbin/sshd", "ip", "ssh-keygen", "nsenter", "cp"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: apt-get install openssh-server openssh-client iproute2 util-linux (CI installs them)", bin)
		}
	}
	if err := local.SweepStaleClouds(filepath.Join(cloudGlob, "cloud")); err != nil {
		t.Logf("sweeping stale clouds: %v", err)
	}
	moat := Moat(t)
	dir, err := os.MkdirTemp("", "moat-cloud-")
	if err != nil {
		t.Fatal(err)
	}
	c, err := local.OpenCloud(filepath.Join(dir, "cloud"), moat)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("open cloud: %v", err)
	}
	stop := onInterrupt(func() { c.DestroyAll(); os.RemoveAll(dir) })
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			dumpCloudLogs(t, c)
		}
		if err := c.DestroyAll(); err != nil {
			t.Errorf("destroy cloud: %v", err)
		}
		os.RemoveAll(dir)
	})
	return c
}

// dumpCloudLogs logs each server's console, sshd and node daemon logs,
// after asking each node daemon for its goroutines (SIGQUIT: a Go
// program prints every stack and exits), so a daemon that hung says where.
func dumpCloudLogs(t testing.TB, c *local.Cloud) {
	servers, _ := c.List(context.Background(), nil)
	for _, s := range servers {
		n, err := c.Machine(s.ID)
		if err != nil {
			continue
		}
		quitNodeDaemon(n.NetNS)
		for _, f := range []string{"console.log", "sshd.log", "node.log", "var-log/moat-node.log"} {
			if b, err := os.ReadFile(filepath.Join(n.Dir, f)); err == nil && len(b) > 0 {
				lines := 80
				if f == "node.log" {
					lines = 1000 // the goroutines
				}
				t.Logf("server %s (%s) %s:\n%s", s.ID, s.Name, f, tail(string(b), lines))
			}
		}
	}
}

// quitNodeDaemon asks the node daemon in a network namespace for its
// goroutines (SIGQUIT: a Go program prints every stack to its log and
// exits) and waits a little for it to be done.
func quitNodeDaemon(netns string) {
	if pid := nodeDaemon(netns); pid > 0 && syscall.Kill(pid, syscall.SIGQUIT) == nil {
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil; {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// nodeDaemon is the pid of the `moat node serve` in a network namespace.
func nodeDaemon(netns string) int {
	out, _ := exec.Command("ip", "netns", "pids", netns).Output()
	for _, p := range strings.Fields(string(out)) {
		cmd, _ := os.ReadFile("/proc/" + p + "/cmdline")
		if args := strings.Split(string(cmd), "\x00"); len(args) >= 3 && args[1] == "node" && args[2] == "serve" {
			pid, _ := strconv.Atoi(p)
			return pid
		}
	}
	return 0
}
