package enroll_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/digitalocean"
	"github.com/moatcloud/moat/internal/provider/digitalocean/fake"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestPoolImageDigitalOcean: moat pool image against DigitalOcean's API
// (the fake on 127.0.0.1, its droplets machines of the local cloud), with
// the operator's token from a file: the builder is created Pending and
// polled until it runs, snapshotted through power_off and snapshot
// actions, and destroyed — no droplet is left, one snapshot is. A droplet
// from the snapshot with the master's user data boots through
// moat-firstboot and its one-time host key is rotated.
func TestPoolImageDigitalOcean(t *testing.T) {
	cloud := testcluster.NewCloud(t)
	f, err := fake.New(cloud.Machines(), fake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	dir := t.TempDir()
	opKey := filepath.Join(dir, "operator_ed25519")
	if _, err := sshkey.GenerateKey(opKey, "operator"); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "do-token")
	os.WriteFile(token, []byte(f.Token()+"\n"), 0o600)
	signers := filepath.Join(dir, "allowed_signers")
	os.WriteFile(signers, []byte(testcluster.AllowedSigners(t)), 0o644)

	cmd := exec.Command(testcluster.Moat(t), "pool", "image", "work", "--provider", "digitalocean", "--endpoint", f.URL(),
		"--token-file", token, "--base", fake.SystemImage, "--type", "s-1vcpu-1gb", "--region", "fra1",
		"-i", opKey, "--allowed-signers", signers, "--no-secrets-key", "--boot-timeout", "2m")
	cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+filepath.Join(dir, "no-master.sock"), "MOAT_MASTER=", "SSH_AUTH_SOCK=",
		"HOME="+dir, "DIGITALOCEAN_TOKEN=", "DIGITALOCEAN_ACCESS_TOKEN=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("moat pool image: %v\n%s%s\nboot errors: %v", err, stdout.String(), stderr.String(), f.BootErrors())
	}
	image := strings.TrimSpace(stdout.String())
	if !strings.Contains(stderr.String(), "no secrets key in the image") {
		t.Errorf("moat pool image --no-secrets-key does not say so:\n%s", stderr.String())
	}
	if s := f.Servers(); len(s) != 0 {
		t.Errorf("droplets left after moat pool image: %+v", s)
	}
	if imgs := f.Images(); len(imgs) != 1 || strconv.Itoa(imgs[0]) != image {
		t.Fatalf("snapshots %v, printed %q", imgs, image)
	}

	c, err := digitalocean.New(f.Token(), f.URL())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	master, err := sshkey.GenerateKey(filepath.Join(dir, "master"), "moat-master")
	if err != nil {
		t.Fatal(err)
	}
	private, public, err := cloudinit.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	ud, err := cloudinit.Render(cloudinit.NodeData{Hostname: "work-1", HostKeyPrivate: private, HostKeyPublic: public,
		AuthorizedKeys: []string{nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleMaster, sshkey.AuthorizedKey(master.PublicKey()))}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Create(ctx, provider.CreateRequest{Name: "work-1", Type: "s-1vcpu-1gb", Region: "fra1", Image: image, UserData: ud,
		Labels: map[string]string{provider.LabelPool: "work"}})
	if err != nil {
		t.Fatal(err)
	}
	for s.Status != provider.Running || s.IPv4 == "" {
		if ctx.Err() != nil {
			t.Fatalf("droplet never ran: %+v; boot errors %v", s, f.BootErrors())
		}
		time.Sleep(50 * time.Millisecond)
		if s, err = c.Get(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	oneTime, _ := sshkey.ParsePublicKey(public)
	pool := sshx.NewPool(sshx.Config{Signer: master})
	defer pool.Close()
	rotated, err := pool.Add(sshx.Target{Name: "work-1", Addr: s.IPv4 + ":22", User: "root", HostKey: oneTime}).NodeAPI().RotateHostKey(ctx, ssh.FingerprintSHA256(oneTime))
	if err != nil {
		t.Fatalf("rotate the droplet's one-time key: %v", err)
	}
	if k, err := sshkey.ParsePublicKey(rotated.New); err != nil || ssh.FingerprintSHA256(k) == ssh.FingerprintSHA256(oneTime) {
		t.Errorf("rotated to %q: %v", rotated.New, err)
	}
	if err := c.Destroy(ctx, s.ID); err != nil {
		t.Error(err)
	}
}
