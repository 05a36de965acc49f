package master_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// autoscaled is a master with a local pool p1 (local-2: 2 CPUs, 2 GiB;
// min 1, max 4, idle after idleAfter) on a local cloud, its image built by
// moat pool image from the operator's side, and the signed probe image.
type autoscaled struct {
	t     testing.TB
	m     *testcluster.Master
	moat  string
	env   []string // the CLI against the master
	cloud string
}

func newAutoscaled(t testing.TB, idleAfter time.Duration) *autoscaled {
	t.Helper()
	moat := testcluster.Moat(t)
	cloud := testcluster.NewCloud(t)
	dir := t.TempDir()
	masterKey := filepath.Join(dir, "master_ed25519")
	if _, err := sshkey.GenerateKey(masterKey, "moat-master"); err != nil {
		t.Fatal(err)
	}
	if _, err := sshkey.GenerateKey(filepath.Join(dir, "peer_ed25519"), "moat-peer"); err != nil {
		t.Fatal(err)
	}
	opKey := filepath.Join(dir, "operator_ed25519")
	if _, err := sshkey.GenerateKey(opKey, "operator"); err != nil {
		t.Fatal(err)
	}
	signers := filepath.Join(dir, "allowed_signers")
	os.WriteFile(signers, []byte(testcluster.AllowedSigners(t)), 0o644)

	// The image, built as the operator would (the master not asked).
	img := exec.Command(moat, "pool", "image", "p1", "--provider", "local", "--local-dir", cloud.Dir(), "--type", "local-2",
		"-i", opKey, "--allowed-signers", signers, "--no-secrets-key", "--boot-timeout", "2m")
	img.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+filepath.Join(dir, "no-master.sock"), "MOAT_MASTER=", "SSH_AUTH_SOCK=", "HOME="+dir)
	var stdout, stderr bytes.Buffer
	img.Stdout, img.Stderr = &stdout, &stderr
	if err := img.Run(); err != nil {
		t.Fatalf("moat pool image: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	image := strings.TrimSpace(stdout.String())

	m := testcluster.StartMaster(t, masterKey, "--pool-interval", "500ms")
	a := &autoscaled{t: t, m: m, moat: moat, cloud: cloud.Dir(),
		env: append(os.Environ(), "MOAT_MASTER_SOCKET="+m.Socket, "MOAT_MASTER=", "HOME="+dir)}
	a.cli("pool", "add", "p1", "--provider", "local", "--local-dir", cloud.Dir(), "--type", "local-2", "--image", image,
		"--min", "1", "--max", "4", "--idle-after", idleAfter.String(), "--max-creates-per-hour", "60")
	m.ImportProbe(t, "probe:1")
	a.waitNodes("the pool's first node", 3*time.Minute, func(ns []masterapi.Node) bool { return len(upNodes(ns)) == 1 })
	return a
}

func (a *autoscaled) cli(args ...string) string {
	a.t.Helper()
	cmd := exec.Command(a.moat, args...)
	cmd.Env = a.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		a.t.Fatalf("moat %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (a *autoscaled) nodes() []masterapi.Node {
	a.t.Helper()
	ns, err := a.m.Client.Nodes(context.Background())
	if err != nil {
		a.t.Fatal(err)
	}
	return ns
}

// upNodes are the names of the nodes up and not cordoned.
func upNodes(ns []masterapi.Node) []string {
	var out []string
	for _, n := range ns {
		if n.State == "up" && !n.Cordoned && !n.Draining {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return out
}

func (a *autoscaled) waitNodes(what string, timeout time.Duration, ok func([]masterapi.Node) bool) []masterapi.Node {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ns := a.nodes()
		if ok(ns) {
			return ns
		}
		if time.Now().After(deadline) {
			st, _ := a.m.Client.Autoscaler(context.Background())
			j, _ := json.MarshalIndent(st, "", "  ")
			a.t.Fatalf("%s: not within %s: nodes %v\nautoscaler %s\n%s", what, timeout, upNodes(ns), j, a.cli("pool", "ls"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (a *autoscaled) replicas(app string) []masterapi.Replica {
	reps, err := a.m.Client.Replicas(context.Background(), app)
	if err != nil {
		a.t.Fatal(err)
	}
	return reps
}

// requestLoop asks app's port 8080 for / through the master's dial, one
// request after another, until stopped; it counts answers and failures.
type requestLoop struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stop       context.CancelFunc
	done       chan struct{}
}

func startRequests(c *masterapi.Client, app string) *requestLoop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &requestLoop{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			err := oneRequest(ctx, c, app)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				l.failed.Add(1)
				l.mu.Lock()
				l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
				l.mu.Unlock()
			default:
				l.ok.Add(1)
			}
		}
	}()
	return l
}

func oneRequest(ctx context.Context, c *masterapi.Client, app string) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := c.DialApp(rctx, app, 8080)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\nHost: probe\r\n\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if !strings.HasPrefix(line, "HTTP/1.") || !strings.Contains(line, " 200 ") {
		return fmt.Errorf("answer %q", strings.TrimSpace(line))
	}
	return nil
}

func (l *requestLoop) halt() {
	l.stop()
	<-l.done
}

// TestClusterAutoscalerLocal: a local pool, min 1, max 4. Replicas that do
// not fit on its one node make the autoscaler ask for the fewest nodes that
// take them (the decision within a second); the nodes appear as network
// namespaces with their own sshd, are enrolled over SSH, receive the
// replicas, and a spread app already running is evened out onto them. The
// deploy waits for them, saying so. Then the load goes away: after the
// (shortened) idle period the nodes are drained and removed, down to the
// pool's min, while a request loop through the master never fails.
func TestClusterAutoscalerLocal(t *testing.T) {
	t.Parallel() // its own cloud, master and directories
	testcluster.RequireRoot(t)
	a := newAutoscaled(t, 15*time.Second)
	first := upNodes(a.nodes())
	ctx := context.Background()

	// web: 2 replicas, both on the first node (spread, but nowhere else).
	web := spec("web", 2, "update: {deadline: 60s}")
	web = strings.Replace(web, "resources: {cpu: 100m, memory: 32Mi}", "resources: {cpu: 500m, memory: 64Mi}", 1)
	web = strings.Replace(web, "update: {deadline: 20s}\n", "", 1)
	resp, err := a.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: web, File: "web.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	watchDeployed(t, a.m.Client, "web", resp.Revision, 2*time.Minute, nil)

	// load: 4 replicas of a whole CPU; 1 fits beside web, 3 do not.
	// Its deadline (20 s) is shorter than new nodes may take: it waits.
	load := strings.Replace(spec("load", 4), "resources: {cpu: 100m, memory: 32Mi}", "resources: {cpu: 1000m, memory: 64Mi}", 1)
	deployed := time.Now()
	resp, err = a.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: load, File: "load.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	// The decision: the pool asked for 2 nodes (2 + 1 CPUs on local-2).
	var grow masterapi.AutoscalerAction
	for deadline := time.Now().Add(30 * time.Second); grow.Kind == ""; time.Sleep(50 * time.Millisecond) {
		st, err := a.m.Client.Autoscaler(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range st.Actions {
			if x.Kind == masterapi.ActionGrow {
				grow = x
			}
		}
		if time.Now().After(deadline) {
			j, _ := json.MarshalIndent(st, "", "  ")
			t.Fatalf("no scale-up within 30s: %s", j)
		}
	}
	decided := grow.Time.Sub(deployed)
	if grow.Pool != "p1" || grow.Count != 2 || grow.Error != "" {
		t.Errorf("scale-up %+v: want p1 grown by 2", grow)
	}
	// While the nodes come, the deploy says what it waits for.
	waiting := false
	watchDeployed(t, a.m.Client, "load", resp.Revision, 4*time.Minute, func(p masterapi.Progress) {
		waiting = waiting || strings.Contains(p.Message, "new nodes in pool p1")
	})
	if !waiting {
		t.Error("the deploy's progress never said it waits for new nodes in pool p1")
	}
	running := time.Since(deployed)
	// Once placed, the status stops saying the replicas wait.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, err := a.m.Client.Autoscaler(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.ScaleUp != nil && len(st.ScaleUp.Unplaced) == 0 {
			break
		}
		if time.Now().After(deadline) {
			j, _ := json.MarshalIndent(st.ScaleUp, "", "  ")
			t.Fatalf("30s after the deploy the status still shows replicas waiting: %s", j)
		}
	}
	ns := upNodes(a.nodes())
	if len(ns) != 3 {
		t.Fatalf("nodes up %v: want the first and 2 new", ns)
	}
	t.Logf("unplaceable → scale-up asked: %s; → running on new local nodes: %s", decided.Round(time.Millisecond), running.Round(time.Millisecond))

	// New nodes get work: web is evened out onto one of them.
	deadline := time.Now().Add(90 * time.Second)
	for {
		n, on := ready(a.replicas("web"))
		newOnes := 0
		for node := range on {
			if !slices.Contains(first, node) {
				newOnes++
			}
		}
		if n == 2 && len(on) == 2 && newOnes == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web not spread onto a new node: %v", on)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The load goes: after the idle period the pool shrinks to its min,
	// draining web's replicas surge-first, no request failing.
	loop := startRequests(a.m.Client, "web")
	for deadline := time.Now().Add(10 * time.Second); loop.ok.Load() < 5; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			loop.halt()
			t.Fatalf("the request loop gets no answer: %v", loop.errs)
		}
	}
	if _, err := a.m.Client.Scale(ctx, "load", 0); err != nil {
		t.Fatal(err)
	}
	a.waitNodes("the pool back at its min", 3*time.Minute, func(ns []masterapi.Node) bool { return len(ns) == 1 && len(upNodes(ns)) == 1 })
	reps := func() bool { n, _ := ready(a.replicas("web")); return n == 2 }
	for deadline := time.Now().Add(30 * time.Second); !reps(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("web not back to 2 ready replicas: %+v", a.replicas("web"))
		}
	}
	time.Sleep(time.Second) // a few more requests on the last node
	loop.halt()
	t.Logf("requests through the scale-down: %d answered, %d failed", loop.ok.Load(), loop.failed.Load())
	if loop.failed.Load() > 0 || loop.ok.Load() < 20 {
		t.Errorf("requests during scale-down: %d answered, %d failed: %v", loop.ok.Load(), loop.failed.Load(), loop.errs)
	}
	st, err := a.m.Client.Autoscaler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	retired := 0
	for _, x := range st.Actions {
		if x.Kind == masterapi.ActionRetire && x.Error == "" {
			retired++
		}
	}
	if retired != 2 {
		t.Errorf("retirements %+v: want 2", st.Actions)
	}
	if out := a.cli("autoscaler", "status"); !strings.Contains(out, "scale-down") || !strings.Contains(out, "p1") {
		t.Errorf("moat autoscaler status:\n%s", out)
	}
	events, err := a.m.Client.Events(ctx, masterapi.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range events {
		kinds[e.Kind]++
	}
	if kinds["scale-up"] < 1 || kinds["scale-down"] != 2 {
		t.Errorf("events by kind %v: want scale-up and 2 scale-down", kinds)
	}
}

// watchDeployed follows a rollout, calling seen (if any) with each
// progress, and wants it deployed.
func watchDeployed(t testing.TB, c *masterapi.Client, app string, rev int, timeout time.Duration, seen func(masterapi.Progress)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last masterapi.Progress
	err := c.Watch(ctx, app, rev, func(p masterapi.Progress) error {
		last = p
		if seen != nil {
			seen(p)
		}
		return nil
	})
	if err != nil || last.Status != "deployed" {
		t.Fatalf("%s revision %d: %v (last %+v)", app, rev, err, last)
	}
}

// BenchmarkClusterAutoscale: on a local pool (local-2, min 1, max 4, idle
// after 3 s) whose one node a base app fills to 1.5 CPUs, each iteration
// deploys an app of one 1-CPU replica, which fits on no node: measured,
// from the deploy, the scale-up request (the autoscaler's grow action; goal
// ≤ 10 s) and the replica running on the new node (the rollout deployed);
// then the app is removed and the pool shrinks back to one node. Baseline
// in the same run: the same deploy of a 0.25-CPU replica, which fits on the
// node there is. Reported: p50 and max of each, and running-on-a-new-node
// over running-on-an-existing-one as a ratio.
//
//	go test -run XXX -bench ClusterAutoscale -benchtime 5x ./internal/master
func BenchmarkClusterAutoscale(b *testing.B) {
	testcluster.RequireRoot(b)
	a := newAutoscaled(b, 3*time.Second)
	ctx := context.Background()
	deploy := func(name, cpu string) (time.Time, int) {
		y := strings.Replace(spec(name, 1), "resources: {cpu: 100m, memory: 32Mi}", "resources: {cpu: "+cpu+", memory: 32Mi}", 1)
		start := time.Now()
		resp, err := a.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: y, File: name + ".yaml"})
		if err != nil {
			b.Fatal(err)
		}
		return start, resp.Revision
	}
	_, rev := deploy("base", "1500m")
	watchDeployed(b, a.m.Client, "base", rev, time.Minute, nil)
	var decide, running, baseline []time.Duration
	b.ResetTimer()
	for i := range b.N {
		// Baseline: room on the node there is.
		start, rev := deploy("small", "250m")
		watchDeployed(b, a.m.Client, "small", rev, time.Minute, nil)
		baseline = append(baseline, time.Since(start))
		if err := a.m.Client.RemoveApp(ctx, "small"); err != nil {
			b.Fatal(err)
		}
		// A new node.
		name := fmt.Sprintf("burst%d", i)
		start, rev = deploy(name, "1000m")
		watchDeployed(b, a.m.Client, name, rev, 3*time.Minute, nil)
		running = append(running, time.Since(start))
		st, err := a.m.Client.Autoscaler(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var grew time.Time
		for _, x := range st.Actions {
			if x.Kind == masterapi.ActionGrow && x.Time.After(start) && grew.IsZero() {
				grew = x.Time
			}
		}
		if grew.IsZero() {
			b.Fatalf("no scale-up for %s: %+v", name, st.Actions)
		}
		decide = append(decide, grew.Sub(start))
		if err := a.m.Client.RemoveApp(ctx, name); err != nil {
			b.Fatal(err)
		}
		a.waitNodes("back to one node", 2*time.Minute, func(ns []masterapi.Node) bool { return len(ns) == 1 })
	}
	b.StopTimer()
	p := func(ds []time.Duration, q float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[min(int(q*float64(len(s))), len(s)-1)].Seconds()
	}
	b.ReportMetric(p(decide, 0.5)*1000, "scale-up-p50-ms")
	b.ReportMetric(p(decide, 1)*1000, "scale-up-max-ms")
	b.ReportMetric(p(running, 0.5), "new-node-running-p50-s")
	b.ReportMetric(p(running, 1), "new-node-running-max-s")
	b.ReportMetric(p(baseline, 0.5), "existing-node-running-p50-s")
	b.ReportMetric(p(running, 0.5)/p(baseline, 0.5), "new/existing")
	b.ReportMetric(0, "ns/op")
}
