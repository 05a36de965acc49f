package digitalocean_test

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/digitalocean"
	"github.com/moatcloud/moat/internal/provider/digitalocean/fake"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestDropletIsARealMachine: the fake API stands on provider/local's
// cloud, so a droplet created through godo (its first create answered 500
// after nothing was made, the second adopted by nothing and sent) boots a
// network-namespace machine from the user data: the operator logs in over
// ssh with the one-time host key pinned, and another pin is refused. The
// droplet is snapshotted (power_off, snapshot, both polled) and destroyed,
// and its machine goes with it.
func TestDropletIsARealMachine(t *testing.T) {
	cloud := testcluster.NewCloud(t)
	f, err := fake.New(cloud.Machines(), fake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	c, err := digitalocean.New(f.Token(), f.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.Policy = provider.Policy{Attempts: 5, Base: 10 * time.Millisecond, Max: time.Second}
	c.ActionPoll = 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	operator, err := sshkey.GenerateKey(filepath.Join(t.TempDir(), "operator"), "operator")
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := cloudinit.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	ud, err := cloudinit.RenderStock(cloudinit.NodeData{Hostname: "do-builder", HostKeyPrivate: priv, HostKeyPublic: pub,
		AuthorizedKeys: []string{sshkey.AuthorizedKey(operator.PublicKey()) + " operator"}})
	if err != nil {
		t.Fatal(err)
	}
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.ServerError})
	s, err := c.Create(ctx, provider.CreateRequest{Name: "do-builder", Type: "s-1vcpu-1gb", Region: "fra1",
		Image: fake.SystemImage, UserData: ud, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	for s.Status != provider.Running {
		if ctx.Err() != nil {
			t.Fatalf("droplet %s never ran: %+v; boot errors %v", s.ID, s, f.BootErrors())
		}
		time.Sleep(50 * time.Millisecond)
		if s, err = c.Get(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	machines, err := cloud.List(ctx, nil)
	if err != nil || len(machines) != 1 || machines[0].IPv4 != s.IPv4 || machines[0].Name != "do-builder" {
		t.Fatalf("the local cloud holds %+v (%v), the droplet is %+v", machines, err, s)
	}
	out, err := sshRun(s.IPv4, operator, pub, "hostname")
	if err != nil || out != "do-builder\n" {
		t.Fatalf("ssh to the droplet with its one-time key pinned: %q %v", out, err)
	}
	_, otherPub, _ := cloudinit.NewHostKey()
	if _, err := sshRun(s.IPv4, operator, otherPub, "true"); err == nil {
		t.Fatal("ssh with another host key pinned succeeded")
	}

	img, err := c.Snapshot(ctx, s.ID, "moat-do-builder")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Images(); len(got) != 1 || strconv.Itoa(got[0]) != img {
		t.Fatalf("images: fake %v (snapshot %s)", got, img)
	}
	if err := c.Destroy(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	for {
		left, err := cloud.List(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("machines left after the droplet was destroyed: %+v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(f.Servers()) != 0 || len(f.Images()) != 0 || len(f.BootErrors()) != 0 {
		t.Fatalf("the fake holds %+v, images %v, boot errors %v", f.Servers(), f.Images(), f.BootErrors())
	}
	if n := f.Requests("POST /v2/droplets"); n != 2 || f.Requests("GET /v2/droplets") != 1 {
		t.Fatalf("%d creates, %d lookups: want 2 and 1", n, f.Requests("GET /v2/droplets"))
	}
	t.Logf("%d API calls for create, boot wait, snapshot and destroy (%d answered)", c.Calls(), f.Requests(""))
}

// sshRun runs a command over ssh with the host key pinned (no trust on
// first use): a wrong key fails the handshake.
func sshRun(ip string, user ssh.Signer, hostKey string, cmd string) (string, error) {
	pinned, err := sshkey.ParsePublicKey(hostKey)
	if err != nil {
		return "", err
	}
	client, err := ssh.Dial("tcp", net.JoinHostPort(ip, "22"), &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(user)},
		HostKeyCallback: ssh.FixedHostKey(pinned), Timeout: 10 * time.Second,
	})
	if err != nil {
		return "", err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	return string(out), err
}
