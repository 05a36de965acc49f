package testcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// Node is a real `moat node serve` with its own root, socket, runc state
// and cgroup parent, so nodes sharing this kernel never collide.
type Node struct {
	t            testing.TB
	Root         string
	Socket       string
	CgroupParent string
	Client       *nodeapi.Client
	extraArgs    []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *LockedBuffer
}

// StartNode starts a node daemon and waits until it answers. Cleanup stops
// it and removes everything it made; its log is printed only on failure.
func StartNode(t testing.TB, extraArgs ...string) *Node {
	t.Helper()
	RequireRoot(t)
	root, err := os.MkdirTemp("", "moat-node-")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{
		t: t, Root: root, Socket: filepath.Join(root, "node.sock"),
		CgroupParent: "moat-test-" + filepath.Base(root), extraArgs: extraArgs,
		logs: &LockedBuffer{},
	}
	n.Client = nodeapi.UnixClient(n.Socket)
	stop := onInterrupt(func() { n.cleanupQuietly() })
	t.Cleanup(func() { stop(); n.cleanup() })
	n.Start()
	return n
}

// Start (re)starts the daemon process on the node's state.
func (n *Node) Start() {
	n.t.Helper()
	// Unsigned images run unless a test asks for signatures (its
	// --require-signed comes later and wins).
	args := append([]string{"node", "serve", "--root", n.Root, "--socket", n.Socket,
		"--cgroup-parent", n.CgroupParent, "--log-level", "debug", "--require-signed=false",
		"--allowed-signers", filepath.Join(n.Root, "allowed_signers"), "--revoked-signers", filepath.Join(n.Root, "revoked_signers"),
		"--peer-key", filepath.Join(n.Root, "peer_ed25519")}, n.extraArgs...)
	cmd := exec.Command(Moat(n.t), args...)
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start node: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	n.waitReady()
}

func (n *Node) waitReady() {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := n.Client.Info(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("node did not answer within 20s: %v\nlog:\n%s", err, n.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill9 kills the daemon with SIGKILL, leaving its containers and shims.
func (n *Node) Kill9() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
		n.cmd = nil
	}
}

// Log returns what the daemon has logged so far.
func (n *Node) Log() string { return n.logs.String() }

// Pid is the daemon's process ID.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// cleanup removes containers, shims, mounts, cgroups and the root.
func (n *Node) cleanup() {
	if n.t.Failed() {
		n.t.Logf("node %s log:\n%s", n.Root, n.logs.String())
	}
	if err := n.cleanupQuietly(); err != nil {
		n.t.Errorf("cleanup %s: %v", n.Root, err)
	}
}

func (n *Node) cleanupQuietly() error {
	n.Kill9()
	runcRoot := nodeapi.Layout{Root: n.Root}.Runc()
	ids, _ := os.ReadDir(runcRoot)
	for _, id := range ids {
		exec.Command("runc", "--root", runcRoot, "kill", id.Name(), "KILL").Run()
	}
	killMatching(n.Root)
	for _, id := range ids {
		exec.Command("runc", "--root", runcRoot, "delete", "--force", id.Name()).Run()
	}
	unmountUnder(n.Root)
	removeCgroups(n.CgroupParent)
	return os.RemoveAll(n.Root)
}

// killMatching kills every process whose command line mentions s: the
// shims and debug sessions of a node root.
func killMatching(s string) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		var pid int
		if _, err := fmt.Sscan(p.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// removeCgroups removes a node's cgroup parent from every hierarchy.
func removeCgroups(parent string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
	dirs = append(dirs, "/sys/fs/cgroup/"+parent)
	for _, d := range dirs {
		subs, _ := os.ReadDir(d)
		for _, s := range subs {
			if s.IsDir() {
				os.Remove(filepath.Join(d, s.Name()))
			}
		}
		os.Remove(d)
	}
}

// LockedBuffer is a buffer a process or goroutine writes while a test
// reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
