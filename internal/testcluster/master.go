package testcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/masterapi"
)

// Master is a real `moat master` process with its own state directory and
// socket, holding the cluster's master key.
type Master struct {
	t      testing.TB
	Dir    string
	Socket string
	Client *masterapi.Client
	args   []string
	// command makes the master's process; nil: the moat binary on this
	// machine (a MasterHost runs it inside its host's namespaces).
	command func(args ...string) *exec.Cmd

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *LockedBuffer
}

// StartMaster initialises a master for the cluster and starts it; args go
// to `moat master` (e.g. "--lease-ttl", "2s").
func (c *Cluster) StartMaster(args ...string) *Master {
	c.t.Helper()
	return StartMaster(c.t, c.MasterKeyPath, args...)
}

// StartMaster initialises a master holding the key at keyPath (and
// keyPath.pub) in a temporary directory and starts it.
func StartMaster(t testing.TB, keyPath string, args ...string) *Master {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "master")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"", ".pub"} {
		b, err := os.ReadFile(keyPath + f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "master_ed25519"+f), b, 0o600)
		// The cluster's peer key, when it has one beside the master key.
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(keyPath), "peer_ed25519"+f)); err == nil {
			os.WriteFile(filepath.Join(dir, "peer_ed25519"+f), b, 0o600)
		}
	}
	if out, err := exec.Command(Moat(t), "init", "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("moat init: %v\n%s", err, out)
	}
	m := &Master{t: t, Dir: dir, Socket: filepath.Join(dir, "master.sock"), args: args, logs: &LockedBuffer{}}
	m.Client = masterapi.UnixClient(m.Socket)
	stop := onInterrupt(func() { m.Kill9() })
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("master log:\n%s", tail(m.logs.String(), 150))
		}
		m.Kill9()
	})
	m.Start()
	return m
}

// Start (re)starts the master process on its state.
func (m *Master) Start() {
	m.t.Helper()
	args := append([]string{"master", "--dir", m.Dir, "--socket", m.Socket, "--log-level", "debug"}, m.args...)
	var cmd *exec.Cmd
	if m.command != nil {
		cmd = m.command(args...)
	} else {
		cmd = exec.Command(Moat(m.t), args...)
	}
	cmd.Stdout, cmd.Stderr = m.logs, m.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start master: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for m.Client.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			m.t.Fatalf("the master did not answer within 20s\n%s", m.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill9 kills the master with SIGKILL.
func (m *Master) Kill9() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.cmd.Process.Signal(syscall.SIGKILL)
		<-m.exited
		m.cmd = nil
	}
}

// Pid is the master's process ID.
func (m *Master) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Log is what the master has logged.
func (m *Master) Log() string { return m.logs.String() }

// Enrol installs moat on the named nodes (as moat node add does) and
// registers them with the master, then waits until the master has them up.
func (c *Cluster) Enrol(m *Master, names ...string) {
	c.t.Helper()
	ctx := context.Background()
	for _, name := range names {
		c.Install(name)
		n, _ := c.Node(name)
		node := inventory.Node{Name: name, Addr: n.Addr.String() + ":22", User: "root", HostKey: n.HostKey, Enrolled: time.Now(),
			Operator: inventory.Access{Dest: name, SSHConfig: c.SSHConfig}}
		if err := m.Client.RegisterNode(ctx, node.Registration()); err != nil {
			c.t.Fatalf("register %s: %v", name, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		nodes, err := m.Client.Nodes(ctx)
		if err != nil {
			c.t.Fatal(err)
		}
		up := 0
		for _, n := range nodes {
			if n.State == "up" && n.Info.CPUs > 0 {
				up++
			}
		}
		if up >= len(names) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nodes not up within 30s: %+v", nodes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ImportProbe builds the probe image (with extra build flags), imports it
// into the master's store and signs it with the test signer.
func (m *Master) ImportProbe(t testing.TB, ref string, build ...string) {
	t.Helper()
	f, err := os.Open(ProbeImage(t, ref, build...))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := m.Client.ImportImage(context.Background(), f, ""); err != nil {
		t.Fatal(err)
	}
	SignImage(t, m.Client, ref)
}
