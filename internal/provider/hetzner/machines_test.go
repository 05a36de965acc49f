package hetzner_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/hetzner"
	"github.com/moatcloud/moat/internal/provider/hetzner/fake"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestLocalMachines: the fake Hetzner API stands on provider/local's
// Cloud, so a server created through hcloud-go (a 500 on the first create
// on the way) boots into a namespace machine whose cloud-init applied the
// user data: the operator logs in over ssh with the one-time host key
// pinned. Snapshotted, and a second server made from the snapshot. Listed
// by label, destroyed: no server and no machine left.
func TestLocalMachines(t *testing.T) {
	cloud := testcluster.NewCloud(t)
	f, err := fake.New(cloud.Machines(), fake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close) // before the cloud's own cleanup (LIFO)
	c, err := hetzner.New(f.Token(), f.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.Policy = provider.Policy{Attempts: 5, Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	c.ActionPoll = 50 * time.Millisecond
	c.ActionTimeout = 2 * time.Minute
	ctx := context.Background()

	operator, err := sshkey.GenerateKey(filepath.Join(t.TempDir(), "operator"), "operator")
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := cloudinit.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	ud, err := cloudinit.RenderStock(cloudinit.NodeData{Hostname: "hz1", HostKeyPrivate: priv, HostKeyPublic: pub,
		AuthorizedKeys: []string{sshkey.AuthorizedKey(operator.PublicKey()) + " operator"}})
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{provider.LabelCluster: "c1", provider.LabelPool: "web"}
	f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.ServerError})
	s, err := c.Create(ctx, provider.CreateRequest{Name: "hz1", Type: "cx22", Region: "fsn1", Image: fake.SystemImage, UserData: ud, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != provider.Running || s.IPv4 == "" {
		t.Fatalf("created %+v", s)
	}
	out, err := sshRun(s.IPv4, operator, pub, "hostname")
	if err != nil || out != "hz1\n" {
		t.Fatalf("ssh to %s with the one-time key pinned: %q, %v", s.IPv4, out, err)
	}
	listed, err := c.List(ctx, labels)
	if err != nil || len(listed) != 1 || listed[0].ID != s.ID || listed[0].IPv4 != s.IPv4 {
		t.Fatalf("listed %+v, %v", listed, err)
	}
	machines, err := cloud.List(ctx, nil)
	if err != nil || len(machines) != 1 || machines[0].Name != "hz1" {
		t.Fatalf("machines: %+v, %v", machines, err)
	}

	// Its disk snapshotted (poweroff and create_image actions), a second
	// server from the snapshot, with user data of its own.
	img, err := c.Snapshot(ctx, s.ID, "hz1 image")
	if err != nil {
		t.Fatal(err)
	}
	priv2, pub2, err := cloudinit.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	ud2, err := cloudinit.RenderStock(cloudinit.NodeData{Hostname: "hz2", HostKeyPrivate: priv2, HostKeyPublic: pub2,
		AuthorizedKeys: []string{sshkey.AuthorizedKey(operator.PublicKey()) + " operator"}})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.Create(ctx, provider.CreateRequest{Name: "hz2", Type: "cx32", Region: "nbg1", Image: img, UserData: ud2, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := sshRun(s2.IPv4, operator, pub2, "hostname"); err != nil || out != "hz2\n" || s2.Image != img {
		t.Fatalf("server %+v from image %s: ssh %q, %v", s2, img, out, err)
	}
	for _, x := range []provider.Server{s, s2} {
		if err := c.Destroy(ctx, x.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DeleteImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if imgs, err := cloud.Images(); err != nil || len(imgs) != 0 {
		t.Errorf("the local cloud's images after the delete: %v, %v", imgs, err)
	}
	if got := f.Servers(); len(got) != 0 {
		t.Errorf("the fake still holds %+v", got)
	}
	if machines, err := cloud.List(ctx, nil); err != nil || len(machines) != 0 {
		t.Errorf("machines left: %+v, %v", machines, err)
	}
}

// sshRun runs a command as root with the host key pinned.
func sshRun(ip string, user ssh.Signer, hostKey, cmd string) (string, error) {
	pinned, err := sshkey.ParsePublicKey(hostKey)
	if err != nil {
		return "", err
	}
	client, err := ssh.Dial("tcp", net.JoinHostPort(ip, "22"), &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(user)},
		HostKeyCallback: ssh.FixedHostKey(pinned), Timeout: 10 * time.Second,
	})
	if err != nil {
		return "", fmt.Errorf("dial: %w", err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	b, err := sess.CombinedOutput(cmd)
	return string(b), err
}
