package enroll_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/secret"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestPrepareImage: image mode over the operator's own ssh leaves a
// builder holding what every pool node trusts — the binary, the
// operator's allowed signers with require-signed, the secrets key, the
// operator's login, hardened sshd, moat-node and moat-firstboot enabled,
// cloud-init's user data off — and none of what must differ per server or
// come from the master: no host keys, no first-boot markers, no master or
// peer key, empty logs. The machine's own /etc/machine-id is untouched
// (a local node has no systemd).
func TestPrepareImage(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.Install("n1") // a machine that was a node: the master's and peer's keys on it
	n, err := c.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	// Image mode writes /etc/systemd/system and /etc/cloud: a local node
	// must have its own, or they would be the machine's.
	for _, sub := range []string{"etc-systemd-system", "etc-cloud"} {
		if _, err := os.Stat(filepath.Join(n.Dir, sub)); err != nil {
			t.Fatalf("local nodes have no private %s: %v", sub, err)
		}
	}
	plant := map[string]string{
		"etc-moat/hostkey.onetime":    "SHA256:stale\n",
		"var-lib-moat/firstboot.done": "",
		"var-log/moat-node.log":       "a log line\n",
		"var-log/old.log.1":           "rotated\n",
	}
	for rel, content := range plant {
		if err := os.WriteFile(filepath.Join(n.Dir, rel), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := secret.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	machineID, _ := os.ReadFile("/etc/machine-id")
	var steps []string
	err = enroll.Prepare(context.Background(), enroll.ImageOptions{
		Access: inventory.Access{Dest: "n1", SSHConfig: c.SSHConfig}, Binary: testcluster.Moat(t),
		RequireSigned: true, AllowedSigners: []byte(testcluster.AllowedSigners(t)), SecretsKey: keys.Marshal(),
		HardenSSHD: true, Metadata: "digitalocean",
		Log: func(s string) { steps = append(steps, s) },
	})
	if err != nil {
		t.Fatalf("prepare: %v\nsteps:\n%s", err, strings.Join(steps, "\n"))
	}
	file := func(rel string) (string, bool) { return nodeFile(t, c, "n1", rel) }
	if bin, ok := file("usr-local-bin/moat"); !ok || len(bin) == 0 {
		t.Error("no /usr/local/bin/moat")
	}
	if s, _ := file("etc-moat/allowed_signers"); s != testcluster.AllowedSigners(t) {
		t.Errorf("allowed_signers: %q", s)
	}
	if conf, _ := file("etc-moat/node.conf"); !strings.Contains(conf, "require-signed=true\n") {
		t.Errorf("node.conf:\n%s", conf)
	}
	if k, _ := file("etc-moat/secrets.key"); k != string(keys.Marshal()) {
		t.Error("the secrets key is not the operator's")
	}
	if u, _ := file("etc-systemd-system/moat-firstboot.service"); !strings.Contains(u, "ExecStart=/usr/local/bin/moat node firstboot --metadata digitalocean\n") ||
		!strings.Contains(u, "Before=ssh.service") {
		t.Errorf("moat-firstboot unit:\n%s", u)
	}
	if u, _ := file("etc-systemd-system/moat-node.service"); !strings.Contains(u, "ExecStart=/usr/local/bin/moat node serve") {
		t.Errorf("moat-node unit:\n%s", u)
	}
	for _, u := range []string{"moat-node.service", "moat-firstboot.service"} {
		if target, err := os.Readlink(filepath.Join(n.Dir, "etc-systemd-system/multi-user.target.wants", u)); err != nil || target != "/etc/systemd/system/"+u {
			t.Errorf("%s not enabled: %q %v", u, target, err)
		}
	}
	if cfg, _ := file("etc-cloud/cloud.cfg.d/99-moat.cfg"); !strings.Contains(cfg, "allow_userdata: false\n") || !strings.Contains(cfg, "allow_public_ssh_keys: false\n") {
		t.Errorf("cloud-init drop-in:\n%s", cfg)
	}
	if _, ok := file("etc-ssh/sshd_config.d/00-moat.conf"); !ok {
		t.Errorf("sshd not hardened; steps:\n%s", strings.Join(steps, "\n"))
	}
	if left, _ := filepath.Glob(filepath.Join(n.Dir, "etc-ssh", "ssh_host_*")); len(left) > 0 {
		t.Errorf("host keys left in the image: %v", left)
	}
	for _, rel := range []string{"etc-moat/hostkey.onetime", "var-lib-moat/firstboot.done", "etc-moat/peer_ed25519", "var-log/old.log.1"} {
		if _, ok := file(rel); ok {
			t.Errorf("%s left in the image", rel)
		}
	}
	if l, _ := file("var-log/moat-node.log"); l != "" {
		t.Errorf("log left: %q", l)
	}
	ak, _ := file("root/.ssh/authorized_keys")
	if strings.Contains(ak, "moat gate") || !strings.Contains(ak, " operator") {
		t.Errorf("authorized_keys in the image (the operator's only):\n%s", ak)
	}
	if now, _ := os.ReadFile("/etc/machine-id"); string(now) != string(machineID) {
		t.Error("the machine's own /etc/machine-id changed")
	}
}
