package gate_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
)

// attacker holds the master's key and uses the real OpenSSH client with it.
type attacker struct {
	t     testing.TB
	c     *testcluster.Cluster
	node  string
	addr  string
	known string
	key   string // default: the master's
}

func newAttacker(t testing.TB, c *testcluster.Cluster, node string) *attacker {
	n, err := c.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(known, []byte(n.Addr.String()+" "+n.HostKey+"\n"), 0o600)
	return &attacker{t: t, c: c, node: node, addr: n.Addr.String(), known: known}
}

func (a *attacker) opts() []string {
	return []string{
		"-i", cmp.Or(a.key, a.c.MasterKeyPath), "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + a.known,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
		"-o", "ControlMaster=no", "-o", "ControlPath=none",
	}
}

// run runs an OpenSSH client program and returns its output and status.
func (a *attacker) run(stdin string, prog string, args ...string) (string, string, int) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		a.t.Fatalf("%s: %v", prog, err)
	}
	return out.String(), errOut.String(), code
}

func (a *attacker) ssh(stdin string, args ...string) (string, string, int) {
	return a.run(stdin, "ssh", append(a.opts(), append([]string{"root@" + a.addr}, args...)...)...)
}

// sftp runs one sftp command in batch mode.
func (a *attacker) sftp(command string) (string, string, int) {
	batch := filepath.Join(a.t.TempDir(), "batch")
	os.WriteFile(batch, []byte(command+"\n"), 0o600)
	return a.run("", "sftp", append(a.opts(), "-b", batch, "root@"+a.addr)...)
}

// masterClient is the Go SSH client with the master's key.
func masterClient(t *testing.T, c *testcluster.Cluster, node string) *ssh.Client {
	t.Helper()
	target := c.Target(node)
	client, err := ssh.Dial("tcp", target.Addr, &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(c.MasterKey)},
		HostKeyCallback: sshkey.PinnedHostKey(node, target.HostKey), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// runProbe imports the probe image as root on the node and runs, through
// the master's path, a container that serves HTTP on a declared port.
func runProbe(t *testing.T, c *testcluster.Cluster, node string) {
	t.Helper()
	pool := sshx.NewPool(sshx.Config{Signer: c.MasterKey})
	t.Cleanup(pool.Close)
	api := pool.Add(c.Target(node)).NodeAPI()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := os.Open(testcluster.ProbeImage(t, "probe:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := c.NodeAPI(node).ImportImage(ctx, f, ""); err != nil {
		t.Fatal(err)
	}
	testcluster.SignNodeImage(t, api, "probe:1")
	spec := nodeapi.ContainerSpec{Name: "web", Image: "probe:1", Cmd: []string{"serve", ":8080"}, Ports: []nodeapi.Port{{Name: "http", Port: 8080}}}
	if _, err := api.CreateContainer(ctx, spec, true); err != nil {
		t.Fatal(err)
	}
	for {
		var lines []nodeapi.LogEntry
		api.Logs(ctx, "web", nodeapi.LogOptions{Tail: -1}, func(e nodeapi.LogEntry) error { lines = append(lines, e); return nil })
		if len(lines) > 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatal("the probe did not start serving")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
