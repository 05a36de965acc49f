package enroll_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/testcluster"
)

// TestAddInstallsSecretsKey: node add installs the operator's secrets key
// as /etc/moat/secrets.key (0600) over the operator's SSH; the master's
// key cannot read it; node rm removes it.
func TestAddInstallsSecretsKey(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	o := newOperator(t, c)
	keyFile := filepath.Join(t.TempDir(), "secrets.key")
	o.env = append(o.env, "MOAT_SECRETS_KEY="+keyFile)
	o.mustMoat("secret", "init")
	_, steps := o.mustMoat("node", "add", "-F", o.sshConfig, "n1")
	if !strings.Contains(steps, "secrets key") {
		t.Errorf("node add does not say it installed the secrets key:\n%s", steps)
	}
	want, _ := os.ReadFile(keyFile)
	got, ok := nodeFile(t, c, "n1", "etc-moat/secrets.key")
	if !ok || got != string(want) {
		t.Fatalf("the node's secrets key is not the operator's: %v", ok)
	}
	n, _ := c.Node("n1")
	if fi, err := os.Stat(filepath.Join(n.Dir, "etc-moat", "secrets.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("/etc/moat/secrets.key: %v %v, want 0600", fi, err)
	}
	known := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(known, []byte(n.Addr.String()+" "+n.HostKey+"\n"), 0o600)
	for _, command := range []string{"cat /etc/moat/secrets.key", "sftp", "rpc"} {
		cmd := exec.Command("ssh", "-i", c.MasterKeyPath, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile="+known,
			"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "root@"+n.Addr.String(), command)
		cmd.Stdin = strings.NewReader("get /etc/moat/secrets.key\nGET /v1/../../etc/moat/secrets.key HTTP/1.1\r\nHost: n\r\n\r\n")
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), "AGE-SECRET-KEY") {
			t.Errorf("the master's key read the secrets key with %q", command)
		}
	}
	o.mustMoat("node", "rm", "n1")
	if _, ok := nodeFile(t, c, "n1", "etc-moat/secrets.key"); ok {
		t.Error("node rm left the secrets key on the node")
	}
}
