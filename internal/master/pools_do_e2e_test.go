package master_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/digitalocean"
	"github.com/moatcloud/moat/internal/provider/digitalocean/fake"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestDigitalOceanPool: a pool at DigitalOcean, the API being the fake on
// 127.0.0.1 whose droplets are machines of the local cloud, so create →
// first boot → host key rotation → enrolment → scheduling all run for
// real, with failures injected at every step:
//   - scale-up to 1: no room for the first size in the first region (422,
//     for good), a 429 and a 500 on the create that follows; the node
//     runs replicas;
//   - scale-up to 3: one create's connection dropped with no answer
//     (adopted by name at once), one create unanswered past the master's
//     create timeout (its droplet found by name by the orphan pass), one
//     droplet that never boots (destroyed at the boot deadline and made
//     again), droplets listed only 2 s after their create, 500s on the
//     listing;
//   - orphans: a droplet carrying this cluster's tag that moat does not
//     know is destroyed after the grace, an untagged one is never touched;
//   - scale-down to 1: two nodes drained and destroyed, no replica lost;
//   - scale-up to 2 with nothing failing (the calls one node costs).
//
// After each step the fake holds exactly the droplets of the pool's
// nodes: a twin made when a lost create's droplet was not listed yet (the
// late listing) is destroyed by the orphan pass, as it knows ids. The API
// calls made per step are logged (the figures).
func TestDigitalOceanPool(t *testing.T) {
	t.Parallel() // its own cloud, fake API, master and directories
	cloud := testcluster.NewCloud(t)
	f, err := fake.New(cloud.Machines(), fake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	dir := t.TempDir()
	image := doPoolImage(t, f, dir)
	keyPath := filepath.Join(dir, "keys", "master_ed25519")
	os.MkdirAll(filepath.Dir(keyPath), 0o700)
	if _, err := sshkey.GenerateKey(keyPath, "moat-master"); err != nil {
		t.Fatal(err)
	}
	if _, err := sshkey.GenerateKey(filepath.Join(dir, "keys", "peer_ed25519"), "moat-peer"); err != nil {
		t.Fatal(err)
	}
	m := testcluster.StartMaster(t, keyPath, "--pool-interval", "200ms", "--pool-boot-deadline", "25s",
		"--pool-orphan-every", "1s", "--pool-orphan-grace", "10s", "--pool-create-timeout", "5s", "--pool-create-backoff", "500ms")
	m.ImportProbe(t, "probe:1")
	e := &poolEnv{t: t, dir: dir, m: m}
	ev := &env{t: t, m: m}
	ignore := map[string]bool{} // droplets the test made itself

	// 1. No room for s-1vcpu-1gb in fra1, then a 429 and a 500.
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.Unavailable, Type: "s-1vcpu-1gb", Region: "fra1", Times: 1000})
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.RateLimit, Delay: time.Second})
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.ServerError})
	one, three, creates := 1, 3, 30
	types, regions := []string{"s-1vcpu-1gb", "s-1vcpu-2gb"}, []string{"fra1", "ams3"}
	endpoint, token := f.URL(), f.Token()
	calls := f.Requests("")
	e.addPool(masterapi.PoolSpec{Name: "web", Provider: "digitalocean", Min: &one, Max: &three, Desired: &one, Types: &types,
		Regions: &regions, Image: &image, Endpoint: &endpoint, Token: &token, MaxCreatesPerHour: &creates})
	nodes := waitDOPool(e, f, "web", 1, ignore, 3*time.Minute)
	t.Logf("scale-up 0→1 (capacity, 429, 500 injected): %d API calls", f.Requests("")-calls)
	pools, err := m.Client.Pools(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cluster := ""
	for _, p := range pools {
		if p.Name == "web" {
			cluster = p.Cluster
		}
	}
	if cluster == "" {
		t.Fatalf("pool web with its cluster id not in %+v", pools)
	}
	d := dropletNamed(t, f, nodes[0].Name)
	if d.Size == "s-1vcpu-1gb" && d.Region == "fra1" {
		t.Errorf("droplet %+v made where there was no room", d)
	}
	if !slices.Contains(d.Tags, "moat-cluster:"+cluster) || !slices.Contains(d.Tags, "moat-pool:web") {
		t.Errorf("droplet tags %v, want moat-cluster:%s and moat-pool:web", d.Tags, cluster)
	}
	if strings.Contains(d.UserData, "allowed_signers") || strings.Contains(d.UserData, "runcmd") {
		t.Errorf("the master's user data holds more than keys:\n%s", d.UserData)
	}
	resp := ev.deploy(spec("app", 2))
	ev.wait("app", resp.Revision)
	if n, where := ready(ev.replicas("app")); n != 2 || where[nodes[0].Name] != 2 {
		t.Fatalf("replicas ready %d on %v, want 2 on %s", n, where, nodes[0].Name)
	}

	// 2. Scale to 3: a create dropped mid-answer, one unanswered past the
	// create timeout, a droplet that never boots, lists 2 s late, two 500s
	// on the listing.
	f.SetListDelay(2 * time.Second)
	// (The two creates take the first two failures; the third is the
	// create that replaces the droplet that never booted.)
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.NeverBoot})
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.Drop})
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.Hang})
	f.Inject(fake.Failure{Route: "GET /v2/droplets", Kind: fake.ServerError, Times: 2})
	calls = f.Requests("")
	e.scale("web", 3)
	waitDOPool(e, f, "web", 3, ignore, 4*time.Minute)
	if left := f.Failures(); len(left) != 1 || left[0].Kind != fake.Unavailable {
		t.Errorf("failures not met: %+v", left)
	}
	t.Logf("scale-up 1→3 (a dropped create, a create timing out, a droplet that never boots, lists 2 s late, 500s on lists): %d API calls (%d creates)",
		f.Requests("")-calls, f.Requests("POST /v2/droplets"))
	f.SetListDelay(0)

	// Idle: what the pool manager asks of DigitalOcean when nothing changes.
	calls = f.Requests("")
	lists := f.Requests("GET /v2/droplets")
	time.Sleep(5 * time.Second) // a measurement window, not a synchronisation
	t.Logf("idle for 5 s (pool pass every 200ms, orphan pass every 1s): %d API calls, %d of them lists",
		f.Requests("")-calls, f.Requests("GET /v2/droplets")-lists)

	// 3. Orphans: a droplet with this cluster's tag nobody recorded goes
	// after the grace; an untagged one stays.
	c, err := digitalocean.New(f.Token(), f.URL())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stray, err := c.Create(ctx, provider.CreateRequest{Name: "stray-1", Type: "s-1vcpu-1gb", Region: "ams3", Image: fake.SystemImage,
		Labels: map[string]string{provider.LabelCluster: cluster, provider.LabelPool: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := c.Create(ctx, provider.CreateRequest{Name: "mine-1", Type: "s-1vcpu-1gb", Region: "ams3", Image: fake.SystemImage})
	if err != nil {
		t.Fatal(err)
	}
	ignore["mine-1"] = true
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := c.Get(ctx, stray.ID); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stray droplet %s is still there after a minute (grace 10 s)", stray.ID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := c.Get(ctx, mine.ID); err != nil {
		t.Fatalf("the untagged droplet was touched: %v", err)
	}
	waitDOPool(e, f, "web", 3, ignore, time.Minute)

	// 4. Scale down: drained, destroyed, no replica lost.
	calls = f.Requests("")
	e.scale("web", 1)
	waitDOPool(e, f, "web", 1, ignore, 3*time.Minute)
	t.Logf("scale-down 3→1: %d API calls", f.Requests("")-calls)
	if n, _ := ready(ev.replicas("app")); n != 2 {
		t.Errorf("%d replicas ready after the scale-down, want 2", n)
	}
	if err := c.Destroy(ctx, mine.ID); err != nil {
		t.Fatal(err)
	}
	delete(ignore, "mine-1")

	// 5. A scale-up with nothing failing: the calls one node costs.
	calls, gets, posts := f.Requests(""), f.Requests("GET /v2/droplets/{id}"), f.Requests("POST /v2/droplets")
	e.scale("web", 2)
	waitDOPool(e, f, "web", 2, ignore, 3*time.Minute)
	t.Logf("scale-up 1→2, no failure: %d API calls (%d creates, %d Get polls, the rest orphan lists)",
		f.Requests("")-calls, f.Requests("POST /v2/droplets")-posts, f.Requests("GET /v2/droplets/{id}")-gets)
	if errs := f.BootErrors(); len(errs) != 0 {
		t.Errorf("machines behind the fake failed: %v", errs)
	}
}

// doPoolImage builds the pool's image as an operator does: moat pool
// image through DigitalOcean's API (the fake), no master involved.
func doPoolImage(t *testing.T, f *fake.Fake, dir string) string {
	t.Helper()
	opKey := filepath.Join(dir, "operator_ed25519")
	if _, err := sshkey.GenerateKey(opKey, "operator"); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "do-token")
	os.WriteFile(token, []byte(f.Token()+"\n"), 0o600)
	signers := filepath.Join(dir, "allowed_signers")
	os.WriteFile(signers, []byte(testcluster.AllowedSigners(t)), 0o644)
	cmd := exec.Command(testcluster.Moat(t), "pool", "image", "web", "--provider", "digitalocean", "--endpoint", f.URL(),
		"--token-file", token, "--base", fake.SystemImage, "--type", "s-1vcpu-1gb", "--region", "ams3",
		"-i", opKey, "--allowed-signers", signers, "--no-secrets-key", "--boot-timeout", "2m")
	cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+filepath.Join(dir, "no-master.sock"), "MOAT_MASTER=", "SSH_AUTH_SOCK=",
		"HOME="+dir, "DIGITALOCEAN_TOKEN=", "DIGITALOCEAN_ACCESS_TOKEN=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("moat pool image: %v\n%s%s\nboot errors: %v", err, stdout.String(), stderr.String(), f.BootErrors())
	}
	if s := f.Servers(); len(s) != 0 {
		t.Fatalf("droplets left after moat pool image: %+v", s)
	}
	return strings.TrimSpace(stdout.String())
}

// waitDOPool polls until the pool has n nodes up and described, and the
// fake holds exactly their droplets (besides those in ignore): nothing
// moat does not know.
func waitDOPool(e *poolEnv, f *fake.Fake, pool string, n int, ignore map[string]bool, timeout time.Duration) []masterapi.Node {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		nodes := e.poolNodes(pool)
		up := 0
		var names []string
		for _, nd := range nodes {
			if nd.State == "up" && nd.Info.CPUs > 0 && !nd.Cordoned {
				up++
			}
			names = append(names, nd.Name)
		}
		var held []string
		for _, d := range f.Servers() {
			if !ignore[d.Name] {
				held = append(held, d.Name)
			}
		}
		slices.Sort(names)
		slices.Sort(held)
		if up == n && len(nodes) == n && slices.Equal(names, held) {
			return nodes
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pool %s: want %d nodes up and the fake holding just their droplets within %s; nodes %+v, droplets %+v, boot errors %v",
				pool, n, timeout, nodes, f.Servers(), f.BootErrors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func dropletNamed(t *testing.T, f *fake.Fake, name string) fake.Server {
	t.Helper()
	for _, d := range f.Servers() {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no droplet named %s: %+v", name, f.Servers())
	return fake.Server{}
}
