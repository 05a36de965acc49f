package master_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/hetzner"
	"github.com/moatcloud/moat/internal/provider/hetzner/fake"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// hzEnv is a fake Hetzner API standing on a local cloud's machines, the
// image the operator built there with moat pool image, and a master.
type hzEnv struct {
	t     *testing.T
	f     *fake.Fake
	image string
	m     *testcluster.Master
}

func newHzEnv(t *testing.T, args ...string) *hzEnv {
	t.Helper()
	cloud := testcluster.NewCloud(t)
	f, err := fake.New(cloud.Machines(), fake.Options{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close) // after the master is killed, before the cloud goes
	e := &hzEnv{t: t, f: f}
	dir := t.TempDir()
	opKey := filepath.Join(dir, "operator_ed25519")
	if _, err := sshkey.GenerateKey(opKey, "operator"); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "hcloud-token")
	os.WriteFile(token, []byte(f.Token()+"\n"), 0o600)
	signers := filepath.Join(dir, "allowed_signers")
	os.WriteFile(signers, []byte(testcluster.AllowedSigners(t)), 0o644)
	cmd := exec.Command(testcluster.Moat(t), "pool", "image", "web", "--provider", "hetzner", "--endpoint", f.URL(),
		"--token-file", token, "--base", fake.SystemImage, "--type", "cx22", "--region", "fsn1",
		"-i", opKey, "--allowed-signers", signers, "--no-secrets-key", "--boot-timeout", "2m")
	cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+filepath.Join(dir, "no-master.sock"), "MOAT_MASTER=", "SSH_AUTH_SOCK=",
		"HOME="+dir, "HCLOUD_TOKEN=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("moat pool image: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	e.image = strings.TrimSpace(stdout.String())
	if s := f.Servers(); len(s) != 0 {
		t.Fatalf("servers left after moat pool image: %+v", s)
	}
	if imgs := f.Images(); len(imgs) != 1 {
		t.Fatalf("images after moat pool image: %v (printed %q)", imgs, e.image)
	}
	keys := filepath.Join(dir, "keys")
	os.MkdirAll(keys, 0o700)
	if _, err := sshkey.GenerateKey(filepath.Join(keys, "master_ed25519"), "moat-master"); err != nil {
		t.Fatal(err)
	}
	if _, err := sshkey.GenerateKey(filepath.Join(keys, "peer_ed25519"), "moat-peer"); err != nil {
		t.Fatal(err)
	}
	e.m = testcluster.StartMaster(t, filepath.Join(keys, "master_ed25519"), args...)
	return e
}

// nodes are the master's nodes of a pool: how many are up, and all names.
func (e *hzEnv) nodes(pool string) (up int, names []string) {
	e.t.Helper()
	nodes, err := e.m.Client.Nodes(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Labels[provider.LabelPool] != pool {
			continue
		}
		if n.State == "up" && n.Info.CPUs > 0 && !n.Cordoned {
			up++
		}
		names = append(names, n.Name)
	}
	slices.Sort(names)
	return up, names
}

// held are the names of the servers the fake holds carrying this label.
func (e *hzEnv) held(label string) []string {
	var out []string
	for _, s := range e.f.Servers() {
		if _, ok := s.Labels[label]; ok {
			out = append(out, s.Name)
		}
	}
	slices.Sort(out)
	return out
}

// waitPool polls until the pool has n nodes up and the fake holds
// exactly their servers under the cluster's label: none moat does not know.
func (e *hzEnv) waitPool(pool string, n int, timeout time.Duration) []string {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		up, names := e.nodes(pool)
		held := e.held(provider.LabelCluster)
		if up == n && len(names) == n && slices.Equal(names, held) {
			return names
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pool %s: want %d nodes up and the fake holding just them within %s; %d up of %v, fake %+v", pool, n, timeout, up, names, e.f.Servers())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *hzEnv) scale(pool string, n int) {
	e.t.Helper()
	if _, err := e.m.Client.ScalePools(context.Background(), masterapi.PoolScale{Desired: map[string]int{pool: n}}); err != nil {
		e.t.Fatalf("scale %s to %d: %v", pool, n, err)
	}
}

// TestHetznerPool: a hetzner pool whose API is the fake, its
// servers real namespace machines booted from the operator's snapshot.
// Failures are injected at each step, and after each the fake holds just
// the servers of the pool's nodes:
//   - cx22 out of capacity everywhere, two 429s and a 500 on the creates
//     and 500s on the orphan listings: the first node is a cx32, enrolled
//     (host key rotated) and running replicas;
//   - a server whose OS never comes up (the API says running): destroyed
//     after the boot deadline; one that stays initializing: destroyed
//     after the create timeout; another made;
//   - a create whose answer never comes, with servers listed late: the
//     provider's retry adopts the server; one node, not two;
//   - a tagged server moat does not know is destroyed after the grace (10 s); an
//     untagged one is never touched;
//   - scaled down, the retired nodes' servers are destroyed.
func TestHetznerPool(t *testing.T) {
	t.Parallel() // its own cloud, fake API, master and directories
	e := newHzEnv(t, "--pool-interval", "200ms", "--pool-boot-deadline", "20s", "--pool-create-timeout", "15s", "--pool-orphan-every", "1s", "--pool-orphan-grace", "10s",
		"--pool-create-backoff", "500ms")
	e.m.ImportProbe(t, "probe:1")
	ctx := context.Background()

	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.Unavailable, Type: "cx22", Times: 1000})
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.RateLimit, Times: 2})
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.ServerError, Times: 1})
	e.f.Inject(fake.Failure{Route: "GET /servers", Kind: fake.ServerError, Times: 2})
	one, three, creates := 1, 3, 20
	types, regions := []string{"cx22", "cx32"}, []string{"fsn1", "nbg1"}
	endpoint, token, prov := e.f.URL(), e.f.Token(), "hetzner"
	if _, err := e.m.Client.AddPool(ctx, masterapi.PoolSpec{Name: "web", Provider: prov, Min: &one, Max: &three, Desired: &one,
		Types: &types, Regions: &regions, Image: &e.image, Endpoint: &endpoint, Token: &token, MaxCreatesPerHour: &creates}); err != nil {
		t.Fatalf("add pool: %v", err)
	}
	names := e.waitPool("web", 1, 2*time.Minute)
	if s := e.f.Servers(); len(s) != 1 || s[0].Type != "cx32" || s[0].Labels[provider.LabelPool] != "web" {
		t.Fatalf("servers %+v, want one cx32 of pool web", s)
	}
	if n := e.f.Requests("POST /servers"); n < 4 {
		t.Errorf("%d creates sent, want at least 4 (cx22 refused, 429, 429, 500, then cx32)", n)
	}
	ev := &env{t: t, m: e.m}
	resp := ev.deploy(spec("app", 2))
	ev.wait("app", resp.Revision)
	if n, where := ready(ev.replicas("app")); n != 2 || where[names[0]] != 2 {
		t.Fatalf("replicas ready %d on %v, want 2 on %s", n, where, names[0])
	}

	// A server whose OS never comes up, then one that never leaves
	// initializing (its create action runs past the create timeout).
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.Silent})
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.NeverBoot})
	creates0 := e.f.Requests("POST /servers")
	e.scale("web", 2)
	e.waitPool("web", 2, 3*time.Minute)
	if n := e.f.Requests("POST /servers") - creates0; n < 3 {
		t.Errorf("%d creates for one node after a silent server and one never booting, want 3 or more", n)
	}

	// A create whose answer never comes (the server is made), and new
	// servers listed only after 3 s.
	e.f.SetListDelay(3 * time.Second)
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.Hang})
	e.scale("web", 3)
	e.waitPool("web", 3, 4*time.Minute)
	e.f.SetListDelay(0)

	// Orphans: servers carrying the cluster's label and unknown to moat go
	// after the grace; one without it stays.
	cluster := ""
	for _, s := range e.f.Servers() {
		cluster = s.Labels[provider.LabelCluster]
	}
	c, err := hetzner.New(e.f.Token(), e.f.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.ActionPoll = 50 * time.Millisecond
	orphan, err := c.Create(ctx, provider.CreateRequest{Name: "orphan", Type: "cx32", Region: "fsn1", Image: fake.SystemImage,
		Labels: map[string]string{provider.LabelCluster: cluster, provider.LabelPool: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := c.Create(ctx, provider.CreateRequest{Name: "stranger", Type: "cx32", Region: "fsn1", Image: fake.SystemImage,
		Labels: map[string]string{provider.LabelPool: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := c.Get(ctx, orphan.ID); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tagged orphan %s is still there after a minute", orphan.ID)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if orphanAge := time.Since(orphan.Created); orphanAge < 10*time.Second {
		t.Errorf("the orphan went %s after its creation, before the 10 s grace", orphanAge)
	}
	e.waitPool("web", 3, time.Minute)

	// Scaled down: two retired, their servers destroyed, replicas kept.
	e.scale("web", 1)
	e.waitPool("web", 1, 3*time.Minute)
	if n, _ := ready(ev.replicas("app")); n != 2 {
		t.Errorf("%d replicas ready after scaling the pool down, want 2", n)
	}
	if _, err := c.Get(ctx, stranger.ID); err != nil {
		t.Errorf("the untagged server was touched: %v", err)
	}
	if err := c.Destroy(ctx, stranger.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("API calls: %d creates in all, %d listings", e.f.Requests("POST /servers"), e.f.Requests("GET /servers"))

	// A clean scale-up by one: the API calls it costs, from the scale to
	// the node up (the create, its action, the server looked at until
	// sshd answers, and the orphan listings meanwhile).
	up0, list0 := e.f.Requests(""), e.f.Requests("GET /servers")
	e.scale("web", 2)
	e.waitPool("web", 2, 2*time.Minute)
	t.Logf("scale-up by one node: %d API calls (%d of them orphan listings, 1 a second here)", e.f.Requests("")-up0, e.f.Requests("GET /servers")-list0)
	e.scale("web", 1)
	e.waitPool("web", 1, 2*time.Minute)

	// An idle pool: what the manager asks of the API in 5 s (passes every
	// 200 ms, the orphan listing every 1 s here).
	routes := []string{"GET /servers", "GET /servers/{id}", "GET /server_types", "GET /servers/actions/{id}", "POST /servers", "DELETE /servers/{id}"}
	before := map[string]int{}
	for _, r := range append(routes, "") {
		before[r] = e.f.Requests(r)
	}
	idle := time.Now()
	for time.Since(idle) < 5*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	var got []string
	for _, r := range routes {
		got = append(got, fmt.Sprintf("%s %d", r, e.f.Requests(r)-before[r]))
	}
	t.Logf("idle 5 s (1 node): %d API calls: %s", e.f.Requests("")-before[""], strings.Join(got, ", "))
	if n := e.f.Requests("POST /servers") - before["POST /servers"]; n != 0 {
		t.Errorf("an idle pool at its size made %d create calls", n)
	}
}
