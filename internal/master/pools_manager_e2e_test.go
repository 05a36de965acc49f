package master_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/local"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// poolEnv is a local cloud (its state directory, opened by the master
// only while it runs), the image the operator built for it with moat
// pool image, and a master with the cluster's keys.
type poolEnv struct {
	t        testing.TB
	dir      string // temporary: keys, the operator's material
	cloudDir string
	image    string
	m        *testcluster.Master
}

// newPoolEnv builds the image and starts a master with the pool
// manager's timings shortened by args.
func newPoolEnv(t testing.TB, args ...string) *poolEnv {
	t.Helper()
	moat := testcluster.Moat(t)
	testcluster.RequireRoot(t)
	dir, err := os.MkdirTemp("", "moat-cloud-")
	if err != nil {
		t.Fatal(err)
	}
	e := &poolEnv{t: t, dir: dir, cloudDir: filepath.Join(dir, "cloud")}
	// Registered first, so it runs last: after the master is killed,
	// whatever the cloud holds is destroyed.
	t.Cleanup(func() {
		c, err := local.OpenCloud(e.cloudDir, moat)
		if err == nil {
			if t.Failed() {
				servers, _ := c.List(context.Background(), nil)
				for _, s := range servers {
					out, _ := c.Console(s.ID)
					t.Logf("server %s %s (%s) console:\n%s", s.ID, s.Name, s.Status, out)
				}
			}
			err = c.DestroyAll()
		}
		if err != nil {
			t.Errorf("destroy cloud: %v", err)
		}
		os.RemoveAll(dir)
	})
	e.image = e.buildImage()
	keyPath := filepath.Join(dir, "keys", "master_ed25519")
	os.MkdirAll(filepath.Dir(keyPath), 0o700)
	if _, err := sshkey.GenerateKey(keyPath, "moat-master"); err != nil {
		t.Fatal(err)
	}
	if _, err := sshkey.GenerateKey(filepath.Join(dir, "keys", "peer_ed25519"), "moat-peer"); err != nil {
		t.Fatal(err)
	}
	e.m = testcluster.StartMaster(t, keyPath, args...)
	return e
}

// buildImage runs moat pool image as an operator would (no master).
func (e *poolEnv) buildImage() string {
	e.t.Helper()
	opKey := filepath.Join(e.dir, "operator_ed25519")
	if _, err := sshkey.GenerateKey(opKey, "operator"); err != nil {
		e.t.Fatal(err)
	}
	signers := filepath.Join(e.dir, "allowed_signers")
	os.WriteFile(signers, []byte(testcluster.AllowedSigners(e.t)), 0o644)
	cmd := exec.Command(testcluster.Moat(e.t), "pool", "image", "web", "--provider", "local", "--local-dir", e.cloudDir, "--type", "local-1",
		"-i", opKey, "--allowed-signers", signers, "--no-secrets-key", "--boot-timeout", "2m")
	cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+filepath.Join(e.dir, "no-master.sock"), "MOAT_MASTER=", "SSH_AUTH_SOCK=", "HOME="+e.dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("moat pool image: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// machines reads what the local cloud holds from its state file (the
// master has it open: no second opener).
func (e *poolEnv) machines() map[string]provider.Server {
	e.t.Helper()
	var st struct {
		Machines map[string]struct {
			Server provider.Server `json:"server"`
			Node   struct {
				Dir string `json:"dir"`
			} `json:"node"`
		} `json:"machines"`
	}
	b, err := os.ReadFile(filepath.Join(e.cloudDir, "cloud.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]provider.Server{}
	for _, m := range st.Machines {
		out[m.Server.Name] = m.Server
	}
	return out
}

func (e *poolEnv) machineDir(id string) string {
	return filepath.Join(e.cloudDir, "machines", id)
}

func (e *poolEnv) addPool(spec masterapi.PoolSpec) {
	e.t.Helper()
	if _, err := e.m.Client.AddPool(context.Background(), spec); err != nil {
		e.t.Fatalf("add pool: %v", err)
	}
}

func (e *poolEnv) scale(pool string, n int) {
	e.t.Helper()
	if _, err := e.m.Client.ScalePools(context.Background(), masterapi.PoolScale{Desired: map[string]int{pool: n}}); err != nil {
		e.t.Fatalf("scale %s to %d: %v", pool, n, err)
	}
}

// poolNodes are the nodes the master has in a pool.
func (e *poolEnv) poolNodes(pool string) []masterapi.Node {
	e.t.Helper()
	nodes, err := e.m.Client.Nodes(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []masterapi.Node
	for _, n := range nodes {
		if n.Labels["moat-pool"] == pool {
			out = append(out, n)
		}
	}
	return out
}

// waitPool polls until the pool has n nodes up and described, and the
// cloud holds exactly those servers (nothing moat does not know) and the
// ones named in also.
func (e *poolEnv) waitPool(pool string, n int, timeout time.Duration, also ...string) []masterapi.Node {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		nodes := e.poolNodes(pool)
		up := 0
		names := slices.Clone(also)
		for _, nd := range nodes {
			if nd.State == "up" && nd.Info.CPUs > 0 && !nd.Cordoned {
				up++
			}
			names = append(names, nd.Name)
		}
		var held []string
		for name := range e.machines() {
			held = append(held, name)
		}
		slices.Sort(names)
		slices.Sort(held)
		if up == n && len(nodes) == n && slices.Equal(names, held) {
			return nodes
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pool %s: want %d nodes up and the cloud holding just them within %s; nodes %+v, cloud %v", pool, n, timeout, nodes, held)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLocalPoolEndToEnd: a local pool at min 1 gets a node, created from
// the operator's image, its one-time host key rotated and the new one
// pinned, which runs replicas; scaled to 3 it has three; scaled to 1 two
// are drained (no replica lost) and destroyed; a master killed while a
// server is being created leaks nothing once restarted.
func TestLocalPoolEndToEnd(t *testing.T) {
	t.Parallel() // its own cloud, master and directories
	// The boot deadline is what the restarted master waits for the
	// server its predecessor was creating when killed (a local server
	// boots in a second or two).
	e := newPoolEnv(t, "--pool-interval", "200ms", "--pool-boot-deadline", "20s", "--pool-orphan-every", "1s", "--pool-orphan-grace", "15s")
	e.m.ImportProbe(t, "probe:1")
	one, four := 1, 4
	creates := 20
	types := []string{"local-1"}
	dir := e.cloudDir
	e.addPool(masterapi.PoolSpec{Name: "web", Provider: "local", Min: &one, Max: &four, Desired: &one, Types: &types, Image: &e.image, LocalDir: &dir, MaxCreatesPerHour: &creates})
	nodes := e.waitPool("web", 1, 2*time.Minute)

	// Enrolled with its host key rotated: the key pinned is the one the
	// node serves now, not the one-time key its user data carried, and
	// the one-time marker is gone.
	srv := e.machines()[nodes[0].Name]
	mdir := e.machineDir(srv.ID)
	served, err := os.ReadFile(filepath.Join(mdir, "etc-ssh", "ssh_host_ed25519_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pinned, _ := sshkey.ParsePublicKey(nodes[0].HostKey)
	servedKey, _ := sshkey.ParsePublicKey(string(served))
	if pinned == nil || servedKey == nil || !bytes.Equal(pinned.Marshal(), servedKey.Marshal()) {
		t.Errorf("pinned host key %q, the node serves %q", nodes[0].HostKey, served)
	}
	if ud, err := os.ReadFile(filepath.Join(mdir, "run-moat", "user-data")); err == nil {
		d, err := cloudinit.Parse(ud)
		if err != nil {
			t.Fatalf("the master's user data: %v", err)
		}
		if one, _ := sshkey.ParsePublicKey(d.HostKeyPublic); one == nil || pinned == nil || bytes.Equal(one.Marshal(), pinned.Marshal()) {
			t.Errorf("the pinned key is the one-time key of the user data (or unreadable)")
		}
		if d.Hostname != nodes[0].Name {
			t.Errorf("user data hostname %q, node %q", d.Hostname, nodes[0].Name)
		}
	}
	if _, err := os.Stat(filepath.Join(mdir, "etc-moat", "hostkey.onetime")); !os.IsNotExist(err) {
		t.Errorf("the one-time host key marker is still there: %v", err)
	}

	// Registered once its sshd answers with the new key: the master's
	// first dial finds it up, and no node-down is recorded for it.
	events, err := e.m.Client.Events(context.Background(), masterapi.EventQuery{Node: nodes[0].Name})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev.Kind == "node-down" {
			t.Errorf("a node-down event for the node just enrolled: %+v", ev)
		}
	}

	// It runs replicas.
	ev := &env{t: t, m: e.m}
	resp := ev.deploy(spec("app", 2))
	ev.wait("app", resp.Revision)
	if n, where := ready(ev.replicas("app")); n != 2 || where[nodes[0].Name] != 2 {
		t.Fatalf("replicas ready %d on %v, want 2 on %s", n, where, nodes[0].Name)
	}

	e.scale("web", 3)
	e.waitPool("web", 3, 3*time.Minute)

	e.scale("web", 1)
	e.waitPool("web", 1, 3*time.Minute)
	if n, _ := ready(ev.replicas("app")); n != 2 {
		t.Errorf("%d replicas ready after scaling the pool down, want 2", n)
	}

	// Killed while a server is being created: the restarted master
	// leaves none it does not know.
	e.scale("web", 2)
	deadline := time.Now().Add(time.Minute)
	for {
		pending := false
		for _, s := range e.machines() {
			pending = pending || s.Status == provider.Pending
		}
		if pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server seen being created: %v", e.machines())
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.m.Kill9()
	e.m.Start()
	e.waitPool("web", 2, 3*time.Minute)
	if n, _ := ready(ev.replicas("app")); n != 2 {
		t.Errorf("%d replicas ready after the restart, want 2", n)
	}
}

// TestLocalPoolFailures: a region where the provider sells none of the
// pool's types is not asked (capacity errors moving to the next type and
// region are TestPoolManagerCapacity's and the fake clouds'); a server labelled with the cluster
// that moat does not know is destroyed after the grace and one without
// the label is never touched; a type that always fails is called no more
// than the pool's max-creates-per-hour, and the pool says its breaker is
// open.
func TestLocalPoolFailures(t *testing.T) {
	t.Parallel() // its own cloud, master and directories
	e := newPoolEnv(t, "--pool-interval", "200ms", "--pool-boot-deadline", "60s", "--pool-orphan-every", "1s", "--pool-orphan-grace", "8s",
		"--pool-create-backoff", "500ms")
	ctx := context.Background()
	pools, err := e.m.Client.Pools(ctx)
	if err != nil || len(pools) == 0 || pools[0].Cluster == "" {
		t.Fatalf("pools %+v, %v: want the cluster's id", pools, err)
	}
	cluster := pools[0].Cluster
	// Before any pool opens the cloud: a stray with the cluster's label,
	// and the operator's own server without it.
	c, err := local.OpenCloud(e.cloudDir, testcluster.Moat(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, provider.CreateRequest{Name: "web-stray", Type: "local-1", Image: local.BaseImage,
		Labels: map[string]string{provider.LabelCluster: cluster, provider.LabelPool: "web"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, provider.CreateRequest{Name: "my-own-vps", Type: "local-1", Image: local.BaseImage}); err != nil {
		t.Fatal(err)
	}
	c = nil // the master opens it from here on

	// The local cloud has only the region "local": every type in
	// "elsewhere" answers a capacity error.
	one, four, creates := 1, 4, 20
	types, regions, dir := []string{"local-1", "local-2"}, []string{"elsewhere", "local"}, e.cloudDir
	e.addPool(masterapi.PoolSpec{Name: "web", Provider: "local", Min: &one, Max: &four, Desired: &one, Types: &types, Regions: &regions,
		Image: &e.image, LocalDir: &dir, MaxCreatesPerHour: &creates})
	nodes := e.waitPool("web", 1, 2*time.Minute, "my-own-vps")
	if srv := e.machines()[nodes[0].Name]; srv.Type != "local-1" || srv.Region != "local" {
		t.Errorf("server %+v: want local-1 in local after capacity errors", srv)
	}
	// The cloud lists where it sells each type: "elsewhere" is never asked.
	if n := strings.Count(e.m.Log(), "pool server type out of capacity"); n != 0 {
		t.Errorf("%d capacity errors: a region the provider does not sell the type in was asked", n)
	}
	if _, ok := e.machines()["web-stray"]; ok {
		t.Error("the labelled stray is still there")
	}

	// A type the cloud does not sell: at most 3 create calls.
	three, bad := 3, []string{"local-9"}
	e.addPool(masterapi.PoolSpec{Name: "bad", Provider: "local", Min: &one, Max: &one, Desired: &one, Types: &bad,
		Image: &e.image, LocalDir: &dir, MaxCreatesPerHour: &three})
	deadline := time.Now().Add(time.Minute)
	for {
		pools, err := e.m.Client.Pools(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var p masterapi.Pool
		for _, q := range pools {
			if q.Name == "bad" {
				p = q
			}
		}
		if p.Breaker != "" && p.CreatesLastHour == 3 {
			t.Logf("pool bad: breaker %q, last error %q", p.Breaker, p.LastError)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool bad: %+v: want the breaker open after 3 create calls", p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // fifteen more passes: none may call
	calls := 0
	for _, line := range strings.Split(e.m.Log(), "\n") {
		if strings.Contains(line, "pool server not created") && strings.Contains(line, "pool=bad") {
			calls++
		}
	}
	if calls != 3 {
		t.Errorf("%d create calls for the pool whose type always fails, want the cap 3", calls)
	}
	e.waitPool("web", 1, time.Minute, "my-own-vps")
}
