package master_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/master"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/hetzner"
	hzfake "github.com/moatcloud/moat/internal/provider/hetzner/fake"
	"github.com/moatcloud/moat/internal/provider/local"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkPoolScaleUp: a local pool scaled up by one, timed from the
// scale request to the node enrolled (host key rotated, registered) and
// up, against the baseline of the same cloud creating a server from the
// same image with the same kind of user data until its sshd answers
// (what any tool waits for, without moat's enrolment). Reports both and
// their ratio.
func BenchmarkPoolScaleUp(b *testing.B) {
	e := newPoolEnv(b, "--pool-interval", "5s")
	ctx := context.Background()

	// Baseline, before the master opens the cloud.
	c, err := local.OpenCloud(e.cloudDir, testcluster.Moat(b))
	if err != nil {
		b.Fatal(err)
	}
	master, err := sshkey.GenerateKey(filepath.Join(e.dir, "keys", "bench_master"), "moat-master")
	if err != nil {
		b.Fatal(err)
	}
	var base time.Duration
	for i := range b.N {
		priv, pub, err := cloudinit.NewHostKey()
		if err != nil {
			b.Fatal(err)
		}
		ud, err := cloudinit.Render(cloudinit.NodeData{Hostname: "base-" + string(rune('a'+i%26)), HostKeyPrivate: priv, HostKeyPublic: pub,
			AuthorizedKeys: []string{nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleMaster, sshkey.AuthorizedKey(master.PublicKey()))}})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		srv, err := c.Create(ctx, provider.CreateRequest{Name: "base-" + string(rune('a'+i%26)), Type: "local-1", Image: e.image, UserData: ud})
		if err != nil {
			b.Fatal(err)
		}
		base += time.Since(start)
		if err := c.Destroy(ctx, srv.ID); err != nil {
			b.Fatal(err)
		}
	}
	c = nil

	zero, hi, creates := 0, b.N, 4*b.N+4
	types, dir := []string{"local-1"}, e.cloudDir
	e.addPool(masterapi.PoolSpec{Name: "web", Provider: "local", Min: &zero, Max: &hi, Desired: &zero, Types: &types, Image: &e.image, LocalDir: &dir, MaxCreatesPerHour: &creates})
	var pool time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		e.scale("web", i+1)
		e.waitPool("web", i+1, 2*time.Minute)
		pool += time.Since(start)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(base.Milliseconds())/n, "ms-create-baseline")
	b.ReportMetric(float64(pool.Milliseconds())/n, "ms-scale-to-node-up")
	b.ReportMetric(float64(pool)/float64(base), "x-baseline")
}

// BenchmarkPoolAPICalls: the Hetzner API requests (the fake's count, as
// the provider's Calls() would) of one scale-up by a node (create, wait,
// enrol) and of an idle pool (its orphan passes: listings; the server
// types and prices once an hour), with real nodes behind the fake API.
// Reports calls per scale-up and per idle hour at the default orphan
// interval (3 min).
func BenchmarkPoolAPICalls(b *testing.B) {
	cloud := testcluster.NewCloud(b)
	f, err := hzfake.New(cloud.Machines(), hzfake.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(f.Close)
	client, err := hetzner.New(f.Token(), f.URL())
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	opKey := filepath.Join(dir, "operator_ed25519")
	op, err := sshkey.GenerateKey(opKey, "operator")
	if err != nil {
		b.Fatal(err)
	}
	b.Setenv("SSH_AUTH_SOCK", "")
	ctx := context.Background()
	image, err := enroll.BuildImage(ctx, enroll.BuildOptions{Provider: client, Pool: "hz", Base: hzfake.SystemImage, Type: "cx22", Region: "fsn1",
		OperatorKey: sshkey.AuthorizedKey(op.PublicKey()) + " operator",
		Image: enroll.ImageOptions{Access: inventory.Access{Identity: opKey}, Binary: testcluster.Moat(b), RequireSigned: true,
			AllowedSigners: []byte(testcluster.AllowedSigners(b)), Metadata: "hetzner"},
		BootTimeout: 2 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	keyPath := filepath.Join(dir, "master_ed25519")
	if _, err := sshkey.GenerateKey(keyPath, "moat-master"); err != nil {
		b.Fatal(err)
	}
	sshkey.GenerateKey(filepath.Join(dir, "peer_ed25519"), "moat-peer")
	const orphanEvery = time.Second
	m := testcluster.StartMaster(b, keyPath, "--pool-interval", "100ms", "--pool-orphan-every", orphanEvery.String())
	e := &poolEnv{t: b, m: m}
	zero, hi, creates := 0, b.N, 4*b.N+4
	types, regions, url, token := []string{"cx22"}, []string{"fsn1"}, f.URL(), f.Token()
	e.addPool(masterapi.PoolSpec{Name: "hz", Provider: "hetzner", Min: &zero, Max: &hi, Desired: &zero, Types: &types, Regions: &regions,
		Image: &image, Endpoint: &url, Token: &token, MaxCreatesPerHour: &creates})
	up := func(n int) {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			ready := 0
			for _, nd := range e.poolNodes("hz") {
				if nd.State == "up" && nd.Info.CPUs > 0 {
					ready++
				}
			}
			if ready == n {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("pool hz: %d of %d nodes up", ready, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Idle first: an empty pool's orphan passes.
	time.Sleep(2 * time.Second) // the first pass lists types and prices
	idleFrom, idleStart := f.Requests(""), time.Now()
	time.Sleep(10 * time.Second)
	idle := float64(f.Requests("")-idleFrom) / (float64(time.Since(idleStart)) / float64(orphanEvery))

	var scaleUps float64
	b.ResetTimer()
	for i := range b.N {
		from, start := f.Requests(""), time.Now()
		e.scale("hz", i+1)
		up(i + 1)
		// The orphan passes that ran meanwhile are not the scale-up's.
		scaleUps += float64(f.Requests("")-from) - idle*float64(time.Since(start))/float64(orphanEvery)
	}
	b.StopTimer()
	b.ReportMetric(idle, "calls/orphan-pass")
	// At the default orphan interval, and the types and prices once an hour.
	b.ReportMetric(idle*float64(time.Hour/master.DefaultOrphanEvery)+1, "calls/idle-hour")
	b.ReportMetric(scaleUps/float64(b.N), "calls/scale-up")
}
