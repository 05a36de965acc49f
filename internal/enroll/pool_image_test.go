package enroll_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/secret"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestPoolImageEndToEnd: the operator builds a local pool's image with
// moat pool image (where: the master's pool), which leaves an image,
// recorded in the pool, and no builder. A server made from it with the master's user data
// (cloudinit.Render: hostname, one-time host key, the master's and peer's
// gate-pinned keys) boots through moat-firstboot; the master dials it with
// the one-time key pinned, rotates it through POST /v1/hostkey, and dials
// again with the new key, which is then the only one accepted. The node's
// signing policy, secrets key and the operator's login came from the
// image: it runs a signed image and refuses an unsigned one.
func TestPoolImageEndToEnd(t *testing.T) {
	cloud := testcluster.NewCloud(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The master, holding a local pool on the cloud (empty: min 0).
	masterKeyPath := filepath.Join(dir, "master_ed25519")
	masterKey, err := sshkey.GenerateKey(masterKeyPath, "moat-master")
	if err != nil {
		t.Fatal(err)
	}
	peerPath := filepath.Join(dir, "peer_ed25519")
	peerKey, err := sshkey.GenerateKey(peerPath, "moat-peer")
	if err != nil {
		t.Fatal(err)
	}
	m := testcluster.StartMaster(t, masterKeyPath)
	cloudDir, zero, two, types := cloud.Dir(), 0, 2, []string{"local-1"}
	if _, err := m.Client.AddPool(ctx, masterapi.PoolSpec{Name: "work", Provider: "local", LocalDir: &cloudDir, Types: &types,
		Min: &zero, Max: &two}); err != nil {
		t.Fatal(err)
	}

	// The operator's material: their login key, signers, secrets key.
	opKey := filepath.Join(dir, "operator_ed25519")
	if _, err := sshkey.GenerateKey(opKey, "operator"); err != nil {
		t.Fatal(err)
	}
	signers := filepath.Join(dir, "allowed_signers")
	os.WriteFile(signers, []byte(testcluster.AllowedSigners(t)), 0o644)
	keys, err := secret.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	secretsKey := filepath.Join(dir, "secrets.key")
	os.WriteFile(secretsKey, keys.Marshal(), 0o600)

	cmd := exec.Command(testcluster.Moat(t), "pool", "image", "work", "-i", opKey, "--allowed-signers", signers, "--secrets-key", secretsKey,
		"--boot-timeout", "2m")
	cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+m.Socket, "MOAT_MASTER=", "SSH_AUTH_SOCK=", "HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("moat pool image: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	image := strings.TrimSpace(stdout.String())
	t.Logf("moat pool image:\n%s", stderr.String())
	for _, want := range []string{"builder", "sealed", "destroyed builder", "pool work's servers now boot image " + image} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("moat pool image does not say %q", want)
		}
	}
	if pools, err := m.Client.Pools(ctx); err != nil || !slices.ContainsFunc(pools, func(p masterapi.Pool) bool { return p.Name == "work" && p.Image == image }) {
		t.Errorf("the image is not recorded in the pool: %+v %v", pools, err)
	}
	if servers, err := cloud.List(ctx, nil); err != nil || len(servers) != 0 {
		t.Fatalf("servers after moat pool image: %+v %v; want none (the builder destroyed)", servers, err)
	}
	if imgs, err := cloud.Images(); err != nil || !slices.Contains(imgs, image) {
		t.Fatalf("the cloud's images %v (%v) lack %q", imgs, err, image)
	}

	// The master creates a server from it with its own user data.
	peerPEM, _ := os.ReadFile(peerPath)
	private, public, err := cloudinit.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	userData, err := cloudinit.Render(cloudinit.NodeData{Hostname: "work-1", HostKeyPrivate: private, HostKeyPublic: public,
		AuthorizedKeys: []string{
			nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleMaster, sshkey.AuthorizedKey(masterKey.PublicKey())),
			nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RolePeer, sshkey.AuthorizedKey(peerKey.PublicKey())),
		},
		PeerKey: peerPEM})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := cloud.Create(ctx, provider.CreateRequest{Name: "work-1", Type: "local-1", Image: image, UserData: userData,
		Labels: map[string]string{provider.LabelPool: "work"}})
	if err != nil {
		t.Fatal(err)
	}
	if refused, _ := cloud.Firstboot(srv.ID); refused != "" {
		t.Fatalf("firstboot refused the master's user data: %s", refused)
	}
	machine, err := cloud.Machine(srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	file := func(rel string) string { b, _ := os.ReadFile(filepath.Join(machine.Dir, rel)); return string(b) }

	oneTime, err := sshkey.ParsePublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(file("etc-moat/hostkey.onetime")); got != ssh.FingerprintSHA256(oneTime) {
		t.Fatalf("hostkey.onetime = %q, want the one-time key's fingerprint %s", got, ssh.FingerprintSHA256(oneTime))
	}

	// The node's audit says its host key is the one-time key, until the
	// master replaces it.
	root := nodeapi.UnixClient(filepath.Join(machine.Dir, "run-moat", "node.sock"))
	oneTimeFinding := func() bool {
		t.Helper()
		rep, err := root.Audit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range rep.Findings {
			if strings.Contains(f.What, "one-time host key") {
				return true
			}
		}
		return false
	}
	if !oneTimeFinding() {
		t.Error("the audit of a node serving its one-time host key does not say so")
	}

	// The master dials with the one-time key pinned and rotates it.
	pool := sshx.NewPool(sshx.Config{Signer: masterKey})
	defer pool.Close()
	addr := srv.IPv4 + ":22"
	conn := pool.Add(sshx.Target{Name: "work-1", Addr: addr, User: "root", HostKey: oneTime})
	rotated, err := conn.NodeAPI().RotateHostKey(ctx, ssh.FingerprintSHA256(oneTime))
	if err != nil {
		t.Fatalf("rotate the one-time host key: %v", err)
	}
	fresh, err := sshkey.ParsePublicKey(rotated.New)
	if err != nil || ssh.FingerprintSHA256(fresh) == ssh.FingerprintSHA256(oneTime) {
		t.Fatalf("rotated to %q (%v): want a new key", rotated.New, err)
	}
	pool.Remove("work-1")
	conn = pool.Add(sshx.Target{Name: "work-1", Addr: addr, User: "root", HostKey: fresh})
	var info nodeapi.NodeInfo
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		info, err = conn.NodeAPI().Info(actx)
		acancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("dial with the new host key pinned: %v", err)
	}
	if _, err := conn.NodeAPI().RotateHostKey(ctx, ssh.FingerprintSHA256(fresh)); err == nil {
		t.Error("a second rotation was accepted")
	}
	// The one-time key is no longer accepted.
	stale := sshx.NewPool(sshx.Config{Signer: masterKey, DialTimeout: 5 * time.Second})
	defer stale.Close()
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = stale.Add(sshx.Target{Name: "work-1", Addr: addr, User: "root", HostKey: oneTime}).NodeAPI().Info(sctx)
	scancel()
	if err == nil {
		t.Error("a connection pinning the one-time key still works")
	}
	pool.Remove("work-1")
	stale.Remove("work-1")

	if oneTimeFinding() {
		t.Error("the audit still reports a one-time host key after the rotation")
	}

	// What the node trusts came from the image.
	if !info.RequireSigned || len(info.Signers) != 1 || !strings.HasPrefix(info.Signers[0], "ops@test SHA256:") {
		t.Errorf("the node's signing policy: require-signed %v, signers %v; want the image's", info.RequireSigned, info.Signers)
	}
	if file("etc-moat/secrets.key") != string(keys.Marshal()) {
		t.Error("the node's secrets key is not the one in the image")
	}
	if ak := file("root/.ssh/authorized_keys"); !strings.Contains(ak, " operator") || strings.Count(ak, "moat gate") != 2 {
		t.Errorf("authorized_keys: the operator's from the image, the master's and peer's from the user data:\n%s", ak)
	}
	if _, err := os.Stat(filepath.Join(machine.Dir, "etc-moat", "hostkey.onetime")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("hostkey.onetime after the rotation: %v", err)
	}

	// Root on the node (the operator) imports two images; only the signed
	// one runs when the master asks.
	for _, ref := range []string{"signed:1", "unsigned:1"} {
		// Different images (a signature covers a digest, not a name).
		f, err := os.Open(testcluster.ProbeImage(t, ref, "--env", "IMAGE="+ref))
		if err != nil {
			t.Fatal(err)
		}
		_, err = root.ImportImage(ctx, f, "")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	testcluster.SignNodeImage(t, root, "signed:1")
	conn = pool.Add(sshx.Target{Name: "work-1", Addr: addr, User: "root", HostKey: fresh})
	if _, err := conn.NodeAPI().CreateContainer(ctx, nodeapi.ContainerSpec{Name: "bad", Image: "unsigned:1", Cmd: []string{"serve", ":8080"}}, true); err == nil ||
		!strings.Contains(err.Error(), "sign") {
		t.Errorf("the master started an unsigned image: %v", err)
	}
	if _, err := conn.NodeAPI().CreateContainer(ctx, nodeapi.ContainerSpec{Name: "good", Image: "signed:1", Cmd: []string{"serve", ":8080"}}, true); err != nil {
		t.Errorf("the master could not start a signed image: %v", err)
	}
}
