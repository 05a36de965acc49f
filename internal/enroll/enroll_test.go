package enroll_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// operator is a person with SSH access to the cluster's machines: an ssh
// config, a known_hosts file, the key the machines let in as root.
type operator struct {
	t         *testing.T
	c         *testcluster.Cluster
	m         *testcluster.Master
	sshConfig string
	known     string
	env       []string
}

func newOperator(t *testing.T, c *testcluster.Cluster) *operator {
	dir := t.TempDir()
	o := &operator{t: t, c: c, m: c.StartMaster(), sshConfig: filepath.Join(dir, "ssh_config"), known: filepath.Join(dir, "known_hosts")}
	var known, cfg bytes.Buffer
	for _, n := range c.Nodes {
		fmt.Fprintf(&known, "%s %s\n", n.Addr, n.HostKey)
		fmt.Fprintf(&cfg, "Host %s\n  HostName %s\n", n.Name, n.Addr)
	}
	fmt.Fprintf(&cfg, "Host *\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n", c.OperatorKeyPath, o.known)
	os.WriteFile(o.known, known.Bytes(), 0o600)
	os.WriteFile(o.sshConfig, cfg.Bytes(), 0o600)
	// The operator's signing policy, as node add installs it by default.
	signers := filepath.Join(dir, "allowed_signers")
	os.WriteFile(signers, []byte(testcluster.AllowedSigners(t)), 0o644)
	o.env = append(os.Environ(), "MOAT_MASTER_SOCKET="+o.m.Socket, "SSH_AUTH_SOCK=", "MOAT_ALLOWED_SIGNERS="+signers,
		"MOAT_EDGE_KEY="+filepath.Join(dir, "edge-cache.key"))
	return o
}

func (o *operator) moat(args ...string) (string, string, int) {
	o.t.Helper()
	cmd := exec.Command(testcluster.Moat(o.t), args...)
	cmd.Env = o.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errOut.String(), ee.ExitCode()
	}
	if err != nil {
		o.t.Fatal(err)
	}
	return out.String(), errOut.String(), 0
}

// mustMoat runs moat, fails the test on a non-zero exit, and returns
// stdout and stderr.
func (o *operator) mustMoat(args ...string) (string, string) {
	o.t.Helper()
	out, errOut, code := o.moat(args...)
	if code != 0 {
		o.t.Fatalf("moat %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out, errOut
}

func nodeFile(t *testing.T, c *testcluster.Cluster, node, rel string) (string, bool) {
	n, err := c.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(n.Dir, rel))
	return string(b), err == nil
}

func TestAddAuditRemove(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	o := newOperator(t, c)

	out, _ := o.mustMoat("node", "add", "-F", o.sshConfig, "--label", "zone=a", "n1")
	for _, want := range []string{"node:", "n1", "runc:", "runc version", "cgroups:", "host key:", "SHA256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("node add output lacks %q:\n%s", want, out)
		}
	}
	keys, _ := nodeFile(t, c, "n1", "root/.ssh/authorized_keys")
	if !strings.Contains(keys, `restrict,command="/usr/local/bin/moat gate --as master"`) || !strings.Contains(keys, " operator") {
		t.Errorf("authorized_keys after enrolment:\n%s", keys)
	}
	if _, ok := nodeFile(t, c, "n1", "usr-local-bin/moat"); !ok {
		t.Error("no /usr/local/bin/moat on the node")
	}
	if signers, _ := nodeFile(t, c, "n1", "etc-moat/allowed_signers"); signers != testcluster.AllowedSigners(t) {
		t.Errorf("allowed_signers on the node:\n%s", signers)
	}
	if conf, _ := nodeFile(t, c, "n1", "etc-moat/node.conf"); !strings.Contains(conf, "require-signed=true\n") || !strings.Contains(conf, "cgroup-parent=") {
		t.Errorf("node.conf after enrolment (require-signed set, other settings kept):\n%s", conf)
	}
	if n, _ := o.m.Client.Nodes(context.Background()); len(n) != 1 || !n[0].Info.RequireSigned || len(n[0].Info.Signers) != 1 || !strings.HasPrefix(n[0].Info.Signers[0], "ops@test SHA256:") {
		t.Errorf("the node does not report its signing policy: %+v", n)
	}
	// Without a signers file a node would run nothing: refused, unless
	// unsigned images are allowed on purpose.
	if _, errOut, code := o.moat("node", "add", "-F", o.sshConfig, "--allowed-signers", "", "n1"); code == 0 || !strings.Contains(errOut, "--allowed-signers FILE") {
		t.Errorf("node add without allowed signers: exit %d\n%s", code, errOut)
	}
	// Again: safe, and nothing uploaded twice.
	_, steps := o.mustMoat("node", "add", "-F", o.sshConfig, "n1")
	if !strings.Contains(steps, "already up to date") {
		t.Errorf("second enrolment re-uploaded:\n%s", steps)
	}
	keys, _ = nodeFile(t, c, "n1", "root/.ssh/authorized_keys")
	if strings.Count(keys, "moat-master") != 1 {
		t.Errorf("the master's key appears %d times:\n%s", strings.Count(keys, "moat-master"), keys)
	}

	var nodes []struct {
		Name, State string
	}
	lsOut, _ := o.mustMoat("node", "ls", "--json")
	json.Unmarshal([]byte(lsOut), &nodes)
	if len(nodes) != 1 || nodes[0].Name != "n1" || nodes[0].State != "up" {
		t.Errorf("node ls: %+v", nodes)
	}

	var report nodeapi.AuditReport
	auditOut, _ := o.mustMoat("node", "audit", "--json", "--strict", "n1")
	if err := json.Unmarshal([]byte(auditOut), &report); err != nil {
		t.Fatal(err)
	}
	for _, s := range report.Sockets {
		if s.Process != "sshd" {
			t.Errorf("audit: %s listens on %s:%d", s.Process, s.Address, s.Port)
		}
	}
	if len(report.Sockets) == 0 {
		t.Error("audit found no sockets: not even sshd")
	}
	if report.SSHD["passwordauthentication"] != "no" {
		t.Errorf("audit read sshd settings %v", report.SSHD)
	}

	o.mustMoat("node", "rm", "n1")
	keys, _ = nodeFile(t, c, "n1", "root/.ssh/authorized_keys")
	if strings.Contains(keys, "moat-master") || !strings.Contains(keys, " operator") {
		t.Errorf("authorized_keys after rm:\n%s", keys)
	}
	if _, ok := nodeFile(t, c, "n1", "usr-local-bin/moat"); ok {
		t.Error("/usr/local/bin/moat is still there")
	}
	if _, ok := nodeFile(t, c, "n1", "run-moat/node.pid"); ok {
		t.Error("the node daemon still runs")
	}
	if _, ok := nodeFile(t, c, "n1", "var-lib-moat/images/blobs/sha256"); !ok {
		n, _ := c.Node("n1")
		if _, err := os.Stat(filepath.Join(n.Dir, "var-lib-moat", "images")); err != nil {
			t.Error("rm without --purge removed the node's data")
		}
	}
	if out, _ := o.mustMoat("node", "ls"); strings.Contains(out, "n1") {
		t.Errorf("node ls after rm:\n%s", out)
	}

	o.mustMoat("node", "add", "-F", o.sshConfig, "n1")
	o.mustMoat("node", "rm", "--purge", "n1")
	n, _ := c.Node("n1")
	if entries, _ := os.ReadDir(filepath.Join(n.Dir, "var-lib-moat")); len(entries) != 0 {
		t.Errorf("after rm --purge /var/lib/moat holds %d entries", len(entries))
	}
}

// TestAddThroughJumpHostWithAgent: the operator reaches n2 only through
// n1, with the key in ssh-agent and no ssh config.
func TestAddThroughJumpHostWithAgent(t *testing.T) {
	c := testcluster.NewCluster(t, 2)
	o := newOperator(t, c)
	agentDir := t.TempDir()
	sock := filepath.Join(agentDir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	testcluster.WaitForSocket(t, sock)
	add := exec.Command("ssh-add", c.OperatorKeyPath)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v %s", err, out)
	}
	o.env = append(o.env, "SSH_AUTH_SOCK="+sock)
	n1, _ := c.Node("n1")
	n2, _ := c.Node("n2")
	// No key in the config: the agent has it. The jump's own ssh reads
	// the config file (not -o options), as an operator's ~/.ssh/config.
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	os.WriteFile(cfg, []byte("Host *\n  UserKnownHostsFile "+o.known+"\n  StrictHostKeyChecking yes\n"), 0o600)
	o.mustMoat("node", "add", "--name", "far", "-F", cfg, "--jump", "root@"+n1.Addr.String(), "root@"+n2.Addr.String())
	nodes, err := o.m.Client.Nodes(context.Background())
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes %+v %v", nodes, err)
	}
	node := nodes[0]
	if node.Name != "far" || node.State != "up" || node.Addr != n2.Addr.String()+":22" || node.Operator.Jump == "" {
		t.Errorf("enrolled %+v", node)
	}
	if node.HostKey != strings.Join(strings.Fields(n2.HostKey)[:2], " ") {
		t.Errorf("pinned host key %q, want n2's %q", node.HostKey, n2.HostKey)
	}
}
