package local_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/local"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
)

func hostData(t testing.TB, hostname string, lines ...string) cloudinit.NodeData {
	t.Helper()
	priv, pub, err := cloudinit.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	return cloudinit.NodeData{Hostname: hostname, HostKeyPrivate: priv, HostKeyPublic: pub, AuthorizedKeys: lines}
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
	s, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

// TestCloudBaseImage: a server from the base image gets the operator's
// user data from its "cloud-init": the operator logs in with the one-time
// host key pinned, and a wrong pin is refused. Servers are listed by
// label, made and destroyed concurrently, and leave nothing behind.
func TestCloudBaseImage(t *testing.T) {
	cloud := testcluster.NewCloud(t)
	ctx := context.Background()
	operator, err := sshkey.GenerateKey(filepath.Join(t.TempDir(), "operator"), "operator")
	if err != nil {
		t.Fatal(err)
	}
	d := hostData(t, "builder", sshkey.AuthorizedKey(operator.PublicKey())+" operator")
	ud, err := cloudinit.RenderStock(d)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{provider.LabelCluster: "c1", provider.LabelPool: "web"}
	s, err := cloud.Create(ctx, provider.CreateRequest{Name: "builder", Type: "local-2", Image: local.BaseImage, UserData: ud, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != provider.Running || s.Region != local.Region || s.IPv4 == "" || s.Type != "local-2" {
		t.Errorf("created %+v", s)
	}
	out, err := sshRun(s.IPv4, operator, d.HostKeyPublic, "hostname; cat /etc/hostname /etc/moat/hostkey.onetime")
	if err != nil {
		t.Fatalf("ssh as the operator with the one-time key pinned: %v\n%s", err, out)
	}
	fp, _ := d.Fingerprint()
	if want := "builder\nbuilder\n" + fp + "\n"; out != want {
		t.Errorf("on the server: %q, want %q", out, want)
	}
	other := hostData(t, "x")
	if _, err := sshRun(s.IPv4, operator, other.HostKeyPublic, "true"); err == nil {
		t.Error("ssh with another host key pinned succeeded")
	}
	if b, _ := os.ReadFile("/etc/hostname"); strings.Contains(string(b), "builder") {
		t.Errorf("the machine's /etc/hostname was written: %q", b)
	}

	// Concurrent creates, listed by label.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool := []string{"web", "db"}[i%2]
			_, errs[i] = cloud.Create(ctx, provider.CreateRequest{Name: fmt.Sprintf("n%d", i), Type: "local-1", Image: local.BaseImage,
				Labels: map[string]string{provider.LabelCluster: "c1", provider.LabelPool: pool}})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	names := func(labels map[string]string) []string {
		list, err := cloud.List(ctx, labels)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range list {
			out = append(out, s.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names(map[string]string{provider.LabelPool: "web"}); !slices.Equal(got, []string{"builder", "n0", "n2"}) {
		t.Errorf("pool web: %v", got)
	}
	if got := names(map[string]string{provider.LabelCluster: "c1", provider.LabelPool: "db"}); !slices.Equal(got, []string{"n1", "n3"}) {
		t.Errorf("pool db: %v", got)
	}
	if got := names(nil); len(got) != 5 {
		t.Errorf("all: %v", got)
	}
	// Another Cloud on the same directory (another process: moat pool
	// image beside the master) sees the same servers.
	again, err := local.OpenCloud(cloud.Dir(), testcluster.Moat(t))
	if err != nil {
		t.Fatal(err)
	}
	if list, err := again.List(ctx, map[string]string{provider.LabelPool: "db"}); err != nil || len(list) != 2 {
		t.Errorf("the same cloud opened again lists %v, %v", list, err)
	}
	if _, err := cloud.Create(ctx, provider.CreateRequest{Name: "n0", Type: "local-1", Image: local.BaseImage}); err == nil {
		t.Error("a second server named n0 was created")
	}
	if _, err := cloud.Create(ctx, provider.CreateRequest{Name: "x", Type: "local-1", Image: "nope"}); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("unknown image: %v", err)
	}

	// Destroy, concurrently: nothing left.
	all, _ := cloud.List(ctx, nil)
	var nodes []local.Node
	for _, s := range all {
		n, err := cloud.Machine(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	errs = make([]error, len(all))
	for i, s := range all {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = cloud.Destroy(ctx, s.ID) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := cloud.Destroy(ctx, all[0].ID); err != nil {
		t.Errorf("destroying a server already gone: %v", err)
	}
	if _, err := cloud.Get(ctx, all[0].ID); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("get a destroyed server: %v", err)
	}
	assertGone(t, nodes)

	// The next server gets an address none of those had just now.
	next, err := cloud.Create(ctx, provider.CreateRequest{Name: "next", Type: "local-1", Image: local.BaseImage})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.IPv4 == next.IPv4 {
			t.Errorf("%s got the address %s of %s, just destroyed", next.Name, next.IPv4, s.Name)
		}
	}
}

// assertGone: no namespace, link, directory, process or cgroup of the
// nodes is left.
func assertGone(t *testing.T, nodes []local.Node) {
	t.Helper()
	netns, _ := exec.Command("ip", "netns", "list").Output()
	for _, n := range nodes {
		if strings.Contains(string(netns), n.NetNS) {
			t.Errorf("namespace %s left", n.NetNS)
		}
		if _, err := net.InterfaceByName(n.HostVeth); err == nil {
			t.Errorf("link %s left", n.HostVeth)
		}
		if _, err := os.Stat(n.Dir); !os.IsNotExist(err) {
			t.Errorf("directory %s left", n.Dir)
		}
		if n.SSHDPid != 0 {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", n.SSHDPid)); err == nil {
				t.Errorf("sshd %d of %s still runs", n.SSHDPid, n.Name)
			}
		}
		if cg, _ := filepath.Glob("/sys/fs/cgroup/*" + strings.TrimPrefix(n.NetNS, "moat")); len(cg) > 0 {
			t.Errorf("cgroups left: %v", cg)
		}
	}
	// No process left that sees a node's directories mounted (mountinfo
	// names a bind's source within its file system: /tmp's own, if a
	// tmpfs, hence the path without /tmp).
	infos, _ := filepath.Glob("/proc/[0-9]*/mountinfo")
	for _, info := range infos {
		b, _ := os.ReadFile(info)
		for _, n := range nodes {
			if strings.Contains(string(b), strings.TrimPrefix(n.Dir, os.TempDir())+"/") {
				cmd, _ := os.ReadFile(filepath.Join(filepath.Dir(info), "cmdline"))
				t.Errorf("process %s (%s) still has %s's directories mounted", filepath.Base(filepath.Dir(info)), strings.ReplaceAll(string(cmd), "\x00", " "), n.Name)
			}
		}
	}
}

// TestCloudSnapshotFirstboot: a server with moat installed is snapshotted;
// a server from the snapshot runs its own moat node firstboot on the
// master's user data — the master key reaches the gate with the one-time
// host key pinned, the daemon answers and reports its type's size — and
// refuses user data with a command or an unpinned key, changing nothing.
func TestCloudSnapshotFirstboot(t *testing.T) {
	cloud := testcluster.NewCloud(t)
	ctx := context.Background()
	keys := t.TempDir()
	operator, err := sshkey.GenerateKey(filepath.Join(keys, "operator"), "operator")
	if err != nil {
		t.Fatal(err)
	}
	master, err := sshkey.GenerateKey(filepath.Join(keys, "master"), "moat-master")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := sshkey.GenerateKey(filepath.Join(keys, "peer"), "moat-peer")
	if err != nil {
		t.Fatal(err)
	}
	peerPEM, err := os.ReadFile(filepath.Join(keys, "peer"))
	if err != nil {
		t.Fatal(err)
	}
	operatorLine := sshkey.AuthorizedKey(operator.PublicKey()) + " operator"
	bd := hostData(t, "builder", operatorLine)
	ud, err := cloudinit.RenderStock(bd)
	if err != nil {
		t.Fatal(err)
	}
	builderFP, _ := bd.Fingerprint()
	builder, err := cloud.Create(ctx, provider.CreateRequest{Name: "builder", Type: "local-1", Image: local.BaseImage, UserData: ud})
	if err != nil {
		t.Fatal(err)
	}
	// What image mode installs, here from outside: moat, the operator's
	// signing policy, require-signed.
	bn, _ := cloud.Machine(builder.ID)
	bin, err := os.ReadFile(testcluster.Moat(t))
	if err != nil {
		t.Fatal(err)
	}
	allowed := testcluster.AllowedSigners(t)
	for path, content := range map[string]string{
		"usr-local-bin/moat":       string(bin),
		"etc-moat/allowed_signers": allowed,
	} {
		if err := os.WriteFile(filepath.Join(bn.Dir, path), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := os.OpenFile(filepath.Join(bn.Dir, "etc-moat/node.conf"), os.O_APPEND|os.O_WRONLY, 0o644)
	f.WriteString("require-signed=true\n")
	f.Close()
	img, err := cloud.Snapshot(ctx, builder.ID, "pool-web")
	if err != nil {
		t.Fatal(err)
	}
	if err := cloud.Destroy(ctx, builder.ID); err != nil {
		t.Fatal(err)
	}

	d := hostData(t, "web-1",
		nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleMaster, sshkey.AuthorizedKey(master.PublicKey())),
		nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RolePeer, sshkey.AuthorizedKey(peer.PublicKey())))
	d.PeerKey = peerPEM
	ud, err = cloudinit.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cloud.Create(ctx, provider.CreateRequest{Name: "web-1", Type: "local-2", Image: img, UserData: ud})
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := cloud.Firstboot(s.ID); msg != "" {
		t.Fatalf("firstboot refused: %s", msg)
	}
	n, _ := cloud.Machine(s.ID)
	fp, _ := d.Fingerprint()
	if b, _ := os.ReadFile(filepath.Join(n.Dir, "etc-moat/hostkey.onetime")); string(b) != fp+"\n" {
		t.Errorf("hostkey.onetime %q, want %q", b, fp)
	}
	if _, err := os.Stat(filepath.Join(n.Dir, "var-lib-moat/firstboot.done")); err != nil {
		t.Errorf("firstboot marker: %v", err)
	}
	hostKey, _ := sshkey.ParsePublicKey(d.HostKeyPublic)
	pool := sshx.NewPool(sshx.Config{Signer: master})
	t.Cleanup(pool.Close)
	conn := pool.Add(sshx.Target{Name: "web-1", Addr: s.IPv4 + ":22", User: "root", HostKey: hostKey})
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	info, err := conn.NodeAPI().Info(cctx)
	if err != nil {
		t.Fatalf("the master through the gate, one-time host key pinned: %v", err)
	}
	if info.CPUs != 2 || info.MemoryBytes != 2<<30 || info.Hostname != "web-1" || !info.RequireSigned {
		t.Errorf("node reports cpus %d, memory %d, hostname %q, require-signed %v; want 2, 2Gi, web-1, true", info.CPUs, info.MemoryBytes, info.Hostname, info.RequireSigned)
	}
	if out, err := sshRun(s.IPv4, operator, d.HostKeyPublic, "true"); err != nil {
		t.Errorf("the operator's key from the image: %v %s", err, out)
	}
	// The master replaces the one-time key it installed, once; the new
	// key is pinned from then on.
	rotated, err := conn.NodeAPI().RotateHostKey(cctx, fp)
	if err != nil {
		t.Fatalf("rotate the one-time host key: %v", err)
	}
	if rotated.New == "" || strings.Contains(rotated.New, strings.Fields(d.HostKeyPublic)[1]) {
		t.Errorf("rotated to %q", rotated.New)
	}
	// sshd re-executes itself on SIGHUP: a moment without a listener.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := sshRun(s.IPv4, operator, rotated.New, "test ! -e /etc/moat/hostkey.onetime")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh with the new key pinned: %v %s", err, out)
		}
	}
	if _, err := sshRun(s.IPv4, operator, d.HostKeyPublic, "true"); err == nil {
		t.Error("the one-time host key still answers after the rotation")
	}

	// Refusals: nothing changes, no sshd.
	unpinned := hostData(t, "web-3", operatorLine)
	unpinnedDoc, err := cloudinit.RenderStock(unpinned)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct{ name, doc, want string }{
		{"runcmd", ud + "runcmd:\n  - [sh, -c, 'echo x >> /etc/moat/allowed_signers']\n", "runcmd"},
		{"unpinned key", unpinnedDoc, "not pinned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := cloud.Create(ctx, provider.CreateRequest{Name: fmt.Sprintf("bad-%d", i), Type: "local-1", Image: img, UserData: tc.doc})
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := cloud.Firstboot(s.ID)
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "refused") {
				t.Errorf("firstboot said %q, want a refusal naming %q", msg, tc.want)
			}
			n, _ := cloud.Machine(s.ID)
			for path, want := range map[string]string{
				"root/.ssh/authorized_keys": operatorLine + "\n",
				"etc-moat/allowed_signers":  allowed,
				// The image's (unsealed here).
				"etc-moat/hostkey.onetime":         builderFP + "\n",
				"etc-ssh/ssh_host_ed25519_key.pub": bd.HostKeyPublic + "\n",
			} {
				if b, err := os.ReadFile(filepath.Join(n.Dir, path)); err != nil || string(b) != want {
					t.Errorf("%s changed: %q %v", path, b, err)
				}
			}
			for _, path := range []string{"var-lib-moat/firstboot.done", "etc-moat/peer_ed25519"} {
				if _, err := os.Stat(filepath.Join(n.Dir, path)); !os.IsNotExist(err) {
					t.Errorf("%s written: %v", path, err)
				}
			}
			if n.SSHDPid != 0 {
				t.Errorf("sshd runs (%d) after a refused firstboot", n.SSHDPid)
			}
			if c, err := net.DialTimeout("tcp", s.IPv4+":22", time.Second); err == nil {
				c.Close()
				t.Error("port 22 answers after a refused firstboot")
			}
		})
	}
	all, _ := cloud.List(ctx, nil)
	var nodes []local.Node
	for _, s := range all {
		n, _ := cloud.Machine(s.ID)
		nodes = append(nodes, n)
		if err := cloud.Destroy(ctx, s.ID); err != nil {
			t.Error(err)
		}
	}
	assertGone(t, nodes)
	if err := cloud.DeleteImage(ctx, img); err != nil {
		t.Error(err)
	}
	if ids, err := cloud.Images(); err != nil || len(ids) != 0 {
		t.Errorf("images left: %v", ids)
	}
}

// TestSweepStaleClouds: a cloud whose process is gone (a killed test run)
// is destroyed by the next sweep, servers and all; a live one is not.
func TestSweepStaleClouds(t *testing.T) {
	cloud := testcluster.NewCloud(t)
	ctx := context.Background()
	s, err := cloud.Create(ctx, provider.CreateRequest{Name: "left", Type: "local-1", Image: local.BaseImage})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := cloud.Machine(s.ID)
	if err := local.SweepStaleClouds(cloud.Dir()); err != nil {
		t.Fatal(err)
	}
	if _, err := cloud.Get(ctx, s.ID); err != nil {
		t.Fatalf("a live cloud was swept: %v", err)
	}
	// Its owner gone: a process that ran and exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(cloud.Dir(), "cloud.json")
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), fmt.Sprintf(`"owner": %d`, os.Getpid()), fmt.Sprintf(`"owner": %d`, dead.Process.Pid), 1))
	if err := os.WriteFile(state, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := local.SweepStaleClouds(cloud.Dir()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cloud.Dir()); !os.IsNotExist(err) {
		t.Errorf("the stale cloud's directory is left: %v", err)
	}
	if _, err := net.InterfaceByName(cloud.Bridge()); err == nil {
		t.Errorf("bridge %s left", cloud.Bridge())
	}
	assertGone(t, []local.Node{n})
}

// BenchmarkCloudCreate: a server from the base image and one from a
// snapshot with moat (firstboot inside, sshd, node daemon answering),
// each created and destroyed; reported as ms per create and per destroy.
//
//	go test -run XXX -bench CloudCreate -benchtime 5x ./internal/provider/local
func BenchmarkCloudCreate(b *testing.B) {
	cloud := testcluster.NewCloud(b)
	ctx := context.Background()
	builder, err := cloud.Create(ctx, provider.CreateRequest{Name: "builder", Type: "local-1", Image: local.BaseImage})
	if err != nil {
		b.Fatal(err)
	}
	bn, _ := cloud.Machine(builder.ID)
	bin, err := os.ReadFile(testcluster.Moat(b))
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(bn.Dir, "usr-local-bin/moat"), bin, 0o755)
	os.WriteFile(filepath.Join(bn.Dir, "etc-moat/allowed_signers"), []byte(testcluster.AllowedSigners(b)), 0o644)
	img, err := cloud.Snapshot(ctx, builder.ID, "bench")
	if err != nil {
		b.Fatal(err)
	}
	cloud.Destroy(ctx, builder.ID)
	master, _, _ := cloudinit.NewHostKey()
	masterKey, _ := ssh.ParsePrivateKey([]byte(master))
	for _, image := range []string{local.BaseImage, img} {
		name := "base"
		if image != local.BaseImage {
			name = "snapshot"
		}
		b.Run(name, func(b *testing.B) {
			var create, destroy time.Duration
			for i := range b.N {
				var ud string
				if image != local.BaseImage {
					d := hostData(b, fmt.Sprintf("s%d", i), nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleMaster, sshkey.AuthorizedKey(masterKey.PublicKey())))
					if ud, err = cloudinit.Render(d); err != nil {
						b.Fatal(err)
					}
				}
				t0 := time.Now()
				s, err := cloud.Create(ctx, provider.CreateRequest{Name: fmt.Sprintf("s%d", i), Type: "local-1", Image: image, UserData: ud})
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := cloud.Destroy(ctx, s.ID); err != nil {
					b.Fatal(err)
				}
				create += t1.Sub(t0)
				destroy += time.Since(t1)
			}
			b.ReportMetric(float64(create.Milliseconds())/float64(b.N), "create-ms")
			b.ReportMetric(float64(destroy.Milliseconds())/float64(b.N), "destroy-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
