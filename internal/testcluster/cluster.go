package testcluster

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/provider/local"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
)

// Cluster is a local cluster of real nodes for a test: network namespaces
// on a bridge, each with its own sshd. It holds an operator key (root
// login, as a VPS provider gives) and a master key (for the gate).
type Cluster struct {
	*local.Cluster
	t               testing.TB
	OperatorKey     ssh.Signer
	OperatorKeyPath string
	MasterKey       ssh.Signer
	MasterKeyPath   string
	// PeerKey is the cluster's peer key (nodes fetch blobs from each other
	// with it); it lives beside the master key, as moat init makes it.
	PeerKey     ssh.Signer
	PeerKeyPath string
	// SSHConfig reaches every node by name as its operator (root, the
	// operator key, host keys checked): ssh -F SSHConfig n1.
	SSHConfig string
	// NodeConf are more node.conf lines Install writes (e.g. "cpus=16").
	NodeConf []string
}

// Clusters of killed test runs are swept by the next run.
const clusterGlob = "/tmp/moat-cluster-*"

// NewCluster creates a cluster of n nodes with sshd running, and removes
// it when the test ends, fails, or is interrupted.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	RequireRoot(t)
	for _, bin := range []string{"/usr/sbin/sshd", "ip", "ssh-keygen", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: apt-get install openssh-server openssh-client iproute2 util-linux (CI installs them)", bin)
		}
	}
	if err := local.SweepStale(filepath.Join(clusterGlob, "c")); err != nil {
		t.Logf("sweeping stale clusters: %v", err)
	}
	dir, err := os.MkdirTemp("", "moat-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, OperatorKeyPath: filepath.Join(dir, "operator_ed25519"), MasterKeyPath: filepath.Join(dir, "master_ed25519")}
	if c.OperatorKey, err = sshkey.GenerateKey(c.OperatorKeyPath, "operator"); err != nil {
		t.Fatal(err)
	}
	if c.MasterKey, err = sshkey.GenerateKey(c.MasterKeyPath, "moat-master"); err != nil {
		t.Fatal(err)
	}
	c.PeerKeyPath = filepath.Join(dir, "peer_ed25519")
	if c.PeerKey, err = sshkey.GenerateKey(c.PeerKeyPath, "moat-peer"); err != nil {
		t.Fatal(err)
	}
	opts := local.Options{
		Name: randomName(), Dir: filepath.Join(dir, "c"), Nodes: n, Moat: Moat(t),
		AuthorizedKeys: []string{sshkey.AuthorizedKey(c.OperatorKey.PublicKey()) + " operator"},
	}
	lc, err := local.Create(opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("create cluster: %v", err)
	}
	c.Cluster = lc
	if c.SSHConfig, err = lc.WriteSSHConfig(dir, c.OperatorKeyPath); err != nil {
		lc.Destroy()
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	stop := onInterrupt(func() { lc.Destroy(); os.RemoveAll(dir) })
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			c.dumpLogs()
		}
		if err := lc.Destroy(); err != nil {
			t.Errorf("destroy cluster: %v", err)
		}
		os.RemoveAll(dir)
	})
	return c
}

func randomName() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return "t" + string(b)
}

// Install puts moat on a node the way enrolment does — the binary in
// /usr/local/bin, the master's key pinned to the gate in root's
// authorized_keys — and starts its daemon.
func (c *Cluster) Install(name string) {
	c.t.Helper()
	n, err := c.Node(name)
	if err != nil {
		c.t.Fatal(err)
	}
	bin, err := os.ReadFile(Moat(c.t))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "usr-local-bin", "moat"), bin, 0o755); err != nil {
		c.t.Fatal(err)
	}
	line := nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleMaster, sshkey.AuthorizedKey(c.MasterKey.PublicKey())) + "\n" +
		nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RolePeer, sshkey.AuthorizedKey(c.PeerKey.PublicKey())) + "\n"
	f, err := os.OpenFile(filepath.Join(n.Dir, "root", ".ssh", "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	f.WriteString(line)
	f.Close()
	peerPEM, err := os.ReadFile(c.PeerKeyPath)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "etc-moat", "peer_ed25519"), peerPEM, 0o600); err != nil {
		c.t.Fatal(err)
	}
	// The operator's signing policy, as enrolment installs it.
	if err := os.WriteFile(filepath.Join(n.Dir, "etc-moat", "allowed_signers"), []byte(AllowedSigners(c.t)), 0o644); err != nil {
		c.t.Fatal(err)
	}
	conf, err := os.OpenFile(filepath.Join(n.Dir, "etc-moat", "node.conf"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	conf.WriteString("require-signed=true\n")
	for _, l := range c.NodeConf {
		conf.WriteString(l + "\n")
	}
	conf.Close()
	if err := c.StartDaemon(name); err != nil {
		c.t.Fatal(err)
	}
}

// HostKey is the pinned host key of a node.
func (c *Cluster) HostKey(name string) ssh.PublicKey {
	n, err := c.Node(name)
	if err != nil {
		c.t.Fatal(err)
	}
	key, err := sshkey.ParsePublicKey(n.HostKey)
	if err != nil {
		c.t.Fatal(err)
	}
	return key
}

// Target is what the master needs to hold a connection to a node.
func (c *Cluster) Target(name string) sshx.Target {
	n, _ := c.Node(name)
	return sshx.Target{Name: name, Addr: n.Addr.String() + ":22", User: "root", HostKey: c.HostKey(name)}
}

// Socket is the path of a node daemon's API socket, seen from the host.
func (c *Cluster) Socket(name string) string {
	n, _ := c.Node(name)
	return filepath.Join(n.Dir, "run-moat", "node.sock")
}

// NodeAPI is a client of a node daemon's socket, from the host (as root on
// the node would use it), bypassing the master.
func (c *Cluster) NodeAPI(name string) *nodeapi.Client {
	return nodeapi.UnixClient(c.Socket(name))
}

func (c *Cluster) dumpLogs() {
	for _, n := range c.Nodes {
		quitNodeDaemon(n.NetNS) // a hung daemon says where
		for _, f := range []string{"sshd.log", "node.log", "var-log/moat-node.log"} {
			if b, err := os.ReadFile(filepath.Join(n.Dir, f)); err == nil && len(b) > 0 {
				lines := 80
				if f == "node.log" {
					lines = 1000 // the goroutines
				}
				c.t.Logf("node %s %s:\n%s", n.Name, f, tail(string(b), lines))
			}
		}
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

var (
	interruptMu    sync.Mutex
	interruptFuncs = map[int]func(){}
	interruptNext  int
	interruptOnce  sync.Once
)

// onInterrupt runs f if the test binary is interrupted (Ctrl-C, or the
// go test timeout's SIGQUIT is not caught; SIGINT and SIGTERM are), so
// namespaces and processes do not outlive a killed run. The returned func
// unregisters f.
func onInterrupt(f func()) func() {
	interruptOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-ch
			interruptMu.Lock()
			for _, f := range interruptFuncs {
				f()
			}
			interruptMu.Unlock()
			fmt.Fprintf(os.Stderr, "testcluster: cleaned up after %v\n", sig)
			os.Exit(1)
		}()
	})
	interruptMu.Lock()
	defer interruptMu.Unlock()
	id := interruptNext
	interruptNext++
	interruptFuncs[id] = f
	return func() {
		interruptMu.Lock()
		delete(interruptFuncs, id)
		interruptMu.Unlock()
	}
}

// WaitForSocket waits until a unix socket accepts connections.
func WaitForSocket(t testing.TB, path string) {
	t.Helper()
	if err := waitUnixSocket(path, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func waitUnixSocket(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.Dial("unix", path)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections: %w", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
