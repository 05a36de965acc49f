package master_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/local"
	"github.com/moatcloud/moat/internal/secret"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestPoolTrust attacks the pool trust path end to end, over real
// OpenSSH, on servers made from the operator's image (moat pool image,
// with a secrets key):
//   - user data that asks for more than the master may give — a command,
//     the signing policy, the secrets key, an operator key, a root gate key,
//     another file under /etc/moat — is refused by the server's own
//     firstboot: the server never answers SSH and none of the image's
//     trust roots changed;
//   - a pool node the manager created enforces the operator's signing
//     policy from the image: through the master's gate it will not run an
//     unsigned image, and runs it once signed;
//   - the master's key on that node cannot read the secrets key (shell,
//     SFTP) nor rotate the host key a second time.
func TestPoolTrust(t *testing.T) {
	t.Parallel() // its own cloud, master and directories
	e, masterKeyPath := newTrustEnv(t)
	ctx := context.Background()
	imageDir := filepath.Join(e.cloudDir, "images", e.image)
	trustRoots := func(root string) map[string]string {
		state := map[string]string{}
		for _, sub := range []string{"etc-moat", "root/.ssh", "etc-ssh", "usr-local-bin"} {
			for p, v := range testcluster.Snapshot(t, filepath.Join(root, sub)) {
				state[filepath.Join(sub, p)] = v
			}
		}
		delete(state, "etc-moat/node.conf") // the server's size: the cloud's, checked below
		return state
	}
	before := trustRoots(imageDir)
	if _, ok := before["etc-moat/secrets.key"]; !ok {
		t.Fatalf("the image has no secrets key: %v", before)
	}
	imageConf, err := os.ReadFile(filepath.Join(imageDir, "etc-moat", "node.conf"))
	if err != nil {
		t.Fatal(err)
	}

	// A compromised master's user data, on the operator's image. The
	// cloud's state is shared with the master, which has it open.
	cloud, err := local.OpenCloud(e.cloudDir, testcluster.Moat(t))
	if err != nil {
		t.Fatal(err)
	}
	master, err := sshkey.LoadSigner(masterKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	masterLine := nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleMaster, sshkey.AuthorizedKey(master.PublicKey()))
	attackerKey, _ := sshkey.GenerateKey(filepath.Join(e.dir, "attacker"), "attacker")
	attackerPub := sshkey.AuthorizedKey(attackerKey.PublicKey())
	priv, pub, err := cloudinit.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	good, err := cloudinit.Render(cloudinit.NodeData{Hostname: "evil", HostKeyPrivate: priv, HostKeyPublic: pub, AuthorizedKeys: []string{masterLine}})
	if err != nil {
		t.Fatal(err)
	}
	indent := func(s string) string {
		return "      " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n      ") + "\n"
	}
	file := func(path, content string) string {
		return good + "  - path: " + path + "\n    permissions: '0600'\n    content: |\n" + indent(content)
	}
	keysWith := func(lines ...string) string {
		return strings.Replace(good, indent(masterLine), indent(strings.Join(lines, "\n")), 1)
	}
	for i, tc := range []struct{ name, doc, says string }{
		{"runcmd", good + "runcmd:\n  - [sh, -c, 'cp /tmp/x /etc/moat/allowed_signers']\n", `"runcmd"`},
		{"bootcmd", good + "bootcmd:\n  - [sh, -c, id]\n", `"bootcmd"`},
		{"users", good + "users:\n  - name: root\n    ssh_authorized_keys: [" + attackerPub + "]\n", `"users"`},
		{"allowed_signers", file(nodeapi.AllowedSigners, "attacker@moat "+attackerPub+"\n"), "allowed_signers"},
		{"secrets key", file(nodeapi.SecretsKey, "AGE-SECRET-KEY-1QQQ\n"), "secrets.key"},
		{"node.conf", file(nodeapi.ConfigFile, "require-signed=false\n"), "node.conf"},
		{"unpinned operator key", keysWith(masterLine, attackerPub+" attacker"), "line 2: not pinned"},
		{"root gate key", keysWith(nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleRoot, attackerPub)), "not pinned"},
		{"gate key without restrict", keysWith(`command="/usr/local/bin/moat gate --as master" ` + attackerPub + " moat-master"), "not pinned"},
		{"encoded authorized_keys", strings.Replace(good, "    append: true\n", "    append: true\n    encoding: b64\n", 1), "encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := cloud.Create(ctx, provider.CreateRequest{Name: fmt.Sprintf("evil-%d", i), Type: "local-1", Image: e.image, UserData: tc.doc,
				Labels: map[string]string{provider.LabelCluster: "attacker"}})
			if err != nil {
				t.Fatal(err)
			}
			defer cloud.Destroy(ctx, s.ID)
			says, _ := cloud.Firstboot(s.ID)
			if !strings.Contains(says, "refused") || !strings.Contains(says, tc.says) {
				t.Errorf("firstboot said %q; want a refusal naming %q", says, tc.says)
			}
			n, _ := cloud.Machine(s.ID)
			if diff := cmp.Diff(before, trustRoots(n.Dir)); diff != "" {
				t.Errorf("the image's trust roots changed (-image +server):\n%s", diff)
			}
			conf, _ := os.ReadFile(filepath.Join(n.Dir, "etc-moat", "node.conf"))
			for _, line := range strings.Split(strings.TrimSpace(string(imageConf)), "\n") {
				if key, _, _ := strings.Cut(line, "="); key != "cpus" && key != "memory" && key != "cgroup-parent" && !bytes.Contains(conf, []byte(line+"\n")) {
					t.Errorf("node.conf lost the image's %q:\n%s", line, conf)
				}
			}
			// No usable gate: nothing listens on port 22.
			if c, err := net.DialTimeout("tcp", s.IPv4+":22", 2*time.Second); err == nil {
				c.Close()
				t.Errorf("server %s answers on port 22 after a refused firstboot", s.Name)
			}
		})
	}

	// A pool node, made by the manager.
	one, creates := 1, 10
	types := []string{"local-1"}
	dir := e.cloudDir
	e.addPool(masterapi.PoolSpec{Name: "web", Provider: "local", Min: &one, Max: &one, Desired: &one, Types: &types, Image: &e.image, LocalDir: &dir, MaxCreatesPerHour: &creates})
	nodes := e.waitPool("web", 1, 2*time.Minute)
	node := nodes[0]
	srv := e.machines()[node.Name]
	hostKey, err := sshkey.ParsePublicKey(node.HostKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := sshx.NewPool(sshx.Config{Signer: master})
	t.Cleanup(pool.Close)
	api := pool.Add(sshx.Target{Name: node.Name, Addr: srv.IPv4 + ":22", User: "root", HostKey: hostKey}).NodeAPI()

	// The signing policy is the operator's, from the image.
	f, err := os.Open(testcluster.ProbeImage(t, "probe:3", "--env", "V=3"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sock := filepath.Join(e.cloudDir, "machines", srv.ID, "run-moat", "node.sock")
	if _, err := nodeapi.UnixClient(sock).ImportImage(ctx, f, ""); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	spec := nodeapi.ContainerSpec{Name: "unsigned", Image: "probe:3", Cmd: []string{"serve", ":8080"}}
	if _, err := api.CreateContainer(cctx, spec, true); err == nil || !strings.Contains(err.Error(), "sign") {
		t.Errorf("the master ran an unsigned image on a pool node: %v", err)
	}
	testcluster.SignNodeImage(t, api, "probe:3")
	if _, err := api.CreateContainer(cctx, spec, true); err != nil {
		t.Errorf("the signed image: %v", err)
	}

	// The master's key: no secrets key, no second rotation.
	known := filepath.Join(e.dir, "known_hosts")
	os.WriteFile(known, []byte(srv.IPv4+" "+node.HostKey+"\n"), 0o600)
	opts := []string{"-i", masterKeyPath, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + known, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=5"}
	secretsKey, err := os.ReadFile(filepath.Join(imageDir, "etc-moat", "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secret.ParseKeys(secretsKey)
	if err != nil {
		t.Fatal(err)
	}
	ageKey := keys.Sealing().String()
	got := filepath.Join(e.dir, "got")
	batch := filepath.Join(e.dir, "batch")
	os.WriteFile(batch, []byte("get "+nodeapi.SecretsKey+" "+got+"\nget ../../../.."+nodeapi.SecretsKey+" "+got+"\n"), 0o600)
	for _, attempt := range []struct {
		name string
		cmd  *exec.Cmd
	}{
		{"shell", exec.Command("ssh", append(opts, "root@"+srv.IPv4, "cat", nodeapi.SecretsKey)...)},
		{"shell after rpc", exec.Command("ssh", append(opts, "root@"+srv.IPv4, "rpc; cat "+nodeapi.SecretsKey)...)},
		{"sftp", exec.Command("sftp", append(opts, "-b", batch, "root@"+srv.IPv4)...)},
	} {
		out, err := attempt.cmd.CombinedOutput()
		t.Logf("the master's key, %s: %v: %s", attempt.name, err, out)
		if err == nil {
			t.Errorf("%s: succeeded", attempt.name)
		}
		read, _ := os.ReadFile(got)
		if strings.Contains(string(out)+string(read), ageKey) || strings.Contains(string(out)+string(read), "AGE-SECRET-KEY") {
			t.Errorf("%s: the master's key read the secrets key", attempt.name)
		}
	}
	fp := ssh.FingerprintSHA256(hostKey)
	if _, err := api.RotateHostKey(cctx, fp); !errors.Is(err, errs.ErrForbidden) {
		t.Errorf("a second rotation of the pool node's host key: %v; want forbidden", err)
	}
	served, _ := os.ReadFile(filepath.Join(e.cloudDir, "machines", srv.ID, "etc-ssh", "ssh_host_ed25519_key.pub"))
	if strings.TrimSpace(string(served)) == "" || !strings.Contains(string(served), strings.Fields(node.HostKey)[1]) {
		t.Errorf("the node serves %q, the master pinned %q", served, node.HostKey)
	}
}

// newTrustEnv is newPoolEnv with the cluster's secrets key in the image;
// it returns the master key's path too.
func newTrustEnv(t *testing.T) (*poolEnv, string) {
	t.Helper()
	moat := testcluster.Moat(t)
	testcluster.RequireRoot(t)
	dir, err := os.MkdirTemp("", "moat-cloud-")
	if err != nil {
		t.Fatal(err)
	}
	e := &poolEnv{t: t, dir: dir, cloudDir: filepath.Join(dir, "cloud")}
	t.Cleanup(func() {
		c, err := local.OpenCloud(e.cloudDir, moat)
		if err == nil {
			err = c.DestroyAll()
		}
		if err != nil {
			t.Errorf("destroy cloud: %v", err)
		}
		os.RemoveAll(dir)
	})
	keys, err := secret.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	secretsKey := filepath.Join(dir, "secrets.key")
	os.WriteFile(secretsKey, keys.Marshal(), 0o600)
	opKey := filepath.Join(dir, "operator_ed25519")
	if _, err := sshkey.GenerateKey(opKey, "operator"); err != nil {
		t.Fatal(err)
	}
	signers := filepath.Join(dir, "allowed_signers")
	os.WriteFile(signers, []byte(testcluster.AllowedSigners(t)), 0o644)
	cmd := exec.Command(moat, "pool", "image", "web", "--provider", "local", "--local-dir", e.cloudDir, "--type", "local-1",
		"-i", opKey, "--allowed-signers", signers, "--secrets-key", secretsKey, "--boot-timeout", "2m")
	cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+filepath.Join(dir, "no-master.sock"), "MOAT_MASTER=", "SSH_AUTH_SOCK=", "HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("moat pool image: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	e.image = strings.TrimSpace(stdout.String())
	keyPath := filepath.Join(dir, "keys", "master_ed25519")
	os.MkdirAll(filepath.Dir(keyPath), 0o700)
	if _, err := sshkey.GenerateKey(keyPath, "moat-master"); err != nil {
		t.Fatal(err)
	}
	if _, err := sshkey.GenerateKey(filepath.Join(dir, "keys", "peer_ed25519"), "moat-peer"); err != nil {
		t.Fatal(err)
	}
	e.m = testcluster.StartMaster(t, keyPath, "--pool-interval", "200ms", "--pool-boot-deadline", "90s", "--pool-orphan-every", "1s", "--pool-orphan-grace", "10m")
	return e, keyPath
}
