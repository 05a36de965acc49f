package master_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sign"
	"github.com/moatcloud/moat/internal/testcluster"
)

// moatCLI runs the real CLI against the test master.
func (e *env) moatCLI(args ...string) (string, string, int) {
	cmd := exec.Command(testcluster.Moat(e.t), args...)
	cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+e.m.Socket)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errOut.String(), ee.ExitCode()
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), errOut.String(), 0
}

func (e *env) specFile(yaml string) string {
	p := filepath.Join(e.t.TempDir(), "app.yaml")
	os.WriteFile(p, []byte(yaml), 0o600)
	return p
}

// TestFailedDeployRollsBack: a revision whose replicas never pass their
// health check is rolled back; moat deploy exits non-zero with the
// failing replica's last log lines, and the old replicas never stopped.
func TestFailedDeployRollsBack(t *testing.T) {
	e := newEnv(t, 3)
	if _, errOut, code := e.moatCLI("deploy", "-f", e.specFile(spec("web", 3))); code != 0 {
		t.Fatalf("good deploy: exit %d\n%s", code, errOut)
	}
	good := e.replicas("web")
	// Health checks on a port nothing listens on.
	bad := strings.Replace(spec("web", 3, "env: {V: '2'}"), "port: http, interval", "port: 9999, interval", 1)
	bad = strings.Replace(bad, "ports: [{name: http, port: 8080}]", "ports: [{name: http, port: 8080}, {name: nope, port: 9999}]", 1)
	_, errOut, code := e.moatCLI("deploy", "-f", e.specFile(bad))
	if code == 0 {
		t.Fatalf("a deploy that cannot become healthy exited 0:\n%s", errOut)
	}
	for _, want := range []string{"failed", "unhealthy", "last log lines", "serving on :8080", "rolled back"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("moat deploy output lacks %q:\n%s", want, errOut)
		}
	}
	e.waitReplicas("web", "back to the good revision", 30*time.Second, func(reps []masterapi.Replica) bool {
		n, _ := ready(reps)
		return n == 3 && len(reps) == 3
	})
	ids := map[string]bool{}
	for _, r := range e.replicas("web") {
		ids[r.ID] = true
	}
	for _, r := range good {
		if !ids[r.ID] {
			t.Errorf("good replica %s was stopped by the failed deploy", r.ID)
		}
	}
	apps, _ := e.m.Client.Apps(context.Background())
	if len(apps) != 1 || apps[0].Status != "deployed" || apps[0].Revision != 3 {
		t.Errorf("after the rollback: %+v", apps)
	}
}

// TestNodeKilledReplicaMoves: a node powered off; its replica runs again,
// healthy, on another node.
func TestNodeKilledReplicaMoves(t *testing.T) {
	e := newEnv(t, 3)
	r := e.deploy(spec("web", 3))
	e.wait("web", r.Revision)
	if err := e.c.StopNode("n2"); err != nil {
		t.Fatal(err)
	}
	// While the master has not yet noticed, dial still reaches a ready
	// replica: one on the dead node is given up on and the next tried.
	for i := range 6 {
		if got := e.get("web", 8080); !strings.HasPrefix(got, "HTTP/1.0 200") {
			t.Errorf("dial %d while n2 dies: %q", i, got)
		}
	}
	reps := e.waitReplicas("web", "3 ready replicas without n2", 30*time.Second, func(reps []masterapi.Replica) bool {
		n, nodes := ready(reps)
		return n == 3 && nodes["n2"] == 0
	})
	_, nodes := ready(reps)
	if nodes["n1"]+nodes["n3"] != 3 {
		t.Errorf("replicas on %v", nodes)
	}
	// The master recorded its failover, as itself, once for the app.
	log, err := e.m.Client.AuditLog(context.Background(), masterapi.AuditQuery{User: "master", App: "web"})
	var failovers []string
	for _, a := range log {
		if a.Action == "failover" {
			failovers = append(failovers, a.Detail)
		}
	}
	if err != nil || len(failovers) != 1 || !strings.Contains(failovers[0], "node n2 down") {
		t.Errorf("the master's failover entries: %q, %v; want one naming n2", failovers, err)
	}
	// An audit of the dead node says so, without waiting for an answer
	// that will not come.
	_, errOut, code := e.moatCLI("node", "audit", "n2")
	if code != 5 || !strings.Contains(errOut, "node n2 is down") {
		t.Errorf("node audit of a dead node: exit %d, %q; want 5 saying it is down", code, errOut)
	}
}

// TestLinkCutNoDuplicates: a node cut off keeps running its replica; it is
// replaced elsewhere; when the link comes back the stale replica is
// stopped, so exactly the desired replicas run.
func TestLinkCutNoDuplicates(t *testing.T) {
	e := newEnv(t, 3)
	r := e.deploy(spec("web", 3))
	e.wait("web", r.Revision)
	if err := e.c.CutLink("n2"); err != nil {
		t.Fatal(err)
	}
	e.waitReplicas("web", "replaced while n2 is cut off", 30*time.Second, func(reps []masterapi.Replica) bool {
		n, nodes := ready(reps)
		return n == 3 && nodes["n2"] == 0
	})
	// n2 still runs its copy: it cannot hear the master.
	stale := runningIDs(t, e.c, "n2")
	if len(stale) != 1 {
		t.Fatalf("n2 should still run its replica while cut off: %v", stale)
	}
	if err := e.c.RestoreLink("n2"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for slices.Contains(runningIDs(t, e.c, "n2"), stale[0]) {
		if time.Now().After(deadline) {
			t.Fatal("the stale replica on n2 was not stopped after the link came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Then the spread is evened out again, one move at a time: in the
	// end each node runs exactly one replica.
	for {
		n1, n2, n3 := running(t, e.c, "n1"), running(t, e.c, "n2"), running(t, e.c, "n3")
		if n1 == 1 && n2 == 1 && n3 == 1 {
			break
		}
		if n1+n2+n3 > 4 {
			t.Fatalf("%d containers run across the cluster (n1 %d, n2 %d, n3 %d), want at most one surge", n1+n2+n3, n1, n2, n3)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not one replica per node after the link came back: n1 %d, n2 %d, n3 %d", n1, n2, n3)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running counts the running containers on a node, asking its daemon
// directly (the socket is a file on this machine, reachable whatever the
// links).
func running(t *testing.T, c *testcluster.Cluster, node string) int {
	return len(runningIDs(t, c, node))
}

// runningIDs lists the running containers on a node.
func runningIDs(t *testing.T, c *testcluster.Cluster, node string) []string {
	t.Helper()
	cs, err := nodeapi.UnixClient(c.Socket(node)).Containers(context.Background())
	if err != nil {
		t.Fatalf("containers of %s: %v", node, err)
	}
	var ids []string
	for _, x := range cs {
		if x.State == nodeapi.StateRunning || x.State == nodeapi.StateRestarting {
			ids = append(ids, x.ID)
		}
	}
	return ids
}

// TestMasterRestartAdopts: killing and restarting the master restarts
// no container that matches the desired state.
func TestMasterRestartAdopts(t *testing.T) {
	e := newEnv(t, 3)
	r := e.deploy(spec("web", 3))
	e.wait("web", r.Revision)
	before := pids(t, e.c)
	e.m.Kill9()
	// Nodes keep running while the master is away.
	if got := pids(t, e.c); !equalPids(before, got) {
		t.Fatalf("containers changed with the master down: %v → %v", before, got)
	}
	e.m.Start()
	e.waitReplicas("web", "adopted", 30*time.Second, func(reps []masterapi.Replica) bool {
		n, _ := ready(reps)
		return n == 3
	})
	// Let it reconcile a few times, then nothing may have changed.
	for range 3 {
		e.m.Client.Apps(context.Background())
		time.Sleep(time.Second)
	}
	if got := pids(t, e.c); !equalPids(before, got) {
		t.Errorf("the restarted master changed containers: %v → %v", before, got)
	}
}

func pids(t *testing.T, c *testcluster.Cluster) map[string]int {
	out := map[string]int{}
	for _, n := range c.Nodes {
		cs, err := nodeapi.UnixClient(c.Socket(n.Name)).Containers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range cs {
			out[x.ID] = x.Pid
		}
	}
	return out
}

func equalPids(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestBadInput: invalid specs name the field and line and change
// nothing; a missing image is named, an image no node accepts the
// signature of is refused; concurrent deploys are refused.
func TestBadInput(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	for _, tc := range []struct{ yaml, want string }{
		{spec("web", 1) + "imgae: x\n", "imgae"},
		{strings.Replace(spec("web", 1), "replicas: 1", "replicas: -1", 1), "app.yaml:3: replicas"},
		{strings.Replace(spec("web", 1), "memory: 32Mi", "memory: 12XB", 1), "resources.memory"},
		{strings.Replace(spec("web", 1), "image: probe:1\n", "", 1), "image"},
		{strings.Replace(spec("web", 1), "ports: [{name: http, port: 8080}]", "ports: [{name: http, port: 8080}, {name: http, port: 8081}]", 1), "ports[1].name"},
	} {
		_, err := e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: tc.yaml, File: "app.yaml"})
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bad spec: %v; want invalid, mentioning %q", err, tc.want)
		}
	}
	_, err := e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: strings.Replace(spec("web", 1), "probe:1", "ghost:9", 1)})
	if !errors.Is(err, errs.ErrNotFound) || !strings.Contains(err.Error(), "ghost:9") {
		t.Errorf("missing image: %v", err)
	}
	// An image no node's allowed signers signed: refused at once, naming
	// it and the way out, unsigned or signed by a stranger.
	f, err := os.Open(testcluster.ProbeImage(t, "probe:2", "--env", "V=2"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := e.m.Client.ImportImage(ctx, f, ""); err != nil {
		t.Fatal(err)
	}
	unsigned := strings.Replace(spec("web", 1), "probe:1", "probe:2", 1)
	if _, err := e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: unsigned}); !errors.Is(err, errs.ErrInvalid) ||
		!strings.Contains(err.Error(), "probe:2 is not signed") || !strings.Contains(err.Error(), "moat image sign") {
		t.Errorf("unsigned image: %v", err)
	}
	img, _ := e.m.Client.Image(ctx, "probe:2")
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	strangerKey, _ := ssh.NewSignerFromKey(stranger)
	sig, _ := sign.Sign(strangerKey, digest.Digest(img.Digest))
	if _, err := e.m.Client.AddSignature(ctx, "probe:2", sig); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: unsigned}); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "is signed only by SHA256:") {
		t.Errorf("image signed by a stranger: %v", err)
	}
	if _, err := e.m.Client.AddSignature(ctx, "probe:2", []byte("not a signature")); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("a malformed signature was attached: %v", err)
	}
	if apps, _ := e.m.Client.Apps(ctx); len(apps) != 0 {
		t.Fatalf("bad deploys changed the state: %+v", apps)
	}
	e.deploy(spec("web", 1))
	_, err = e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: spec("web", 1, "env: {X: 'y'}")})
	if !errors.Is(err, errs.ErrConflict) {
		t.Errorf("a second deploy while the first rolls out: %v, want a conflict", err)
	}
}

// TestDrain: a drained node's replicas move off under the update rules
// and nothing new lands on it.
func TestDrain(t *testing.T) {
	e := newEnv(t, 3)
	r := e.deploy(spec("web", 2))
	e.wait("web", r.Revision)
	var victim string
	for _, x := range e.replicas("web") {
		victim = x.Node
	}
	if err := e.m.Client.NodeVerb(context.Background(), victim, "drain"); err != nil {
		t.Fatal(err)
	}
	e.waitReplicas("web", "moved off "+victim, 30*time.Second, func(reps []masterapi.Replica) bool {
		n, nodes := ready(reps)
		return n == 2 && nodes[victim] == 0 && len(reps) == 2
	})
	s, _ := e.m.Client.Scale(context.Background(), "web", 3)
	e.wait("web", s.Revision)
	_, nodes := ready(e.replicas("web"))
	if nodes[victim] != 0 {
		t.Errorf("a replica was placed on the drained node: %v", nodes)
	}
}

// TestRevokedSignerKeepsPrevious: the operator revokes the signing key on
// the nodes; a deploy of a new image signed by it is refused by every
// node, saying why, and the running revision goes on untouched.
func TestRevokedSignerKeepsPrevious(t *testing.T) {
	e := newEnv(t, 2)
	e.wait("web", e.deploy(spec("web", 2)).Revision)
	before := pids(t, e.c)
	e.importSigned("probe:v2", 2)
	revoked := ssh.MarshalAuthorizedKey(testcluster.Signer(t).PublicKey())
	for _, n := range e.c.Nodes {
		if err := os.WriteFile(filepath.Join(n.Dir, "etc-moat", "revoked_signers"), revoked, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, errOut, code := e.moatCLI("deploy", "-f", e.specFile(strings.Replace(spec("web", 2), "probe:1", "probe:v2", 1)))
	if code == 0 {
		t.Fatalf("a deploy of an image signed by a revoked key exited 0:\n%s", errOut)
	}
	for _, want := range []string{"failed", "which is revoked", "rolled back"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("moat deploy output lacks %q:\n%s", want, errOut)
		}
	}
	e.waitReplicas("web", "the previous revision only", 30*time.Second, func(reps []masterapi.Replica) bool {
		n, _ := ready(reps)
		return n == 2 && len(reps) == 2
	})
	if got := pids(t, e.c); !equalPids(before, got) {
		t.Errorf("containers changed: %v → %v", before, got)
	}
	for _, n := range e.c.Nodes {
		imgs, _ := e.c.NodeAPI(n.Name).Images(context.Background())
		for _, img := range imgs {
			if img.Name == "probe:v2" {
				t.Errorf("node %s stored the refused image", n.Name)
			}
		}
		if left, _ := os.ReadDir(nodeapi.Layout{Root: filepath.Join(n.Dir, "var-lib-moat")}.InboxBlobs()); len(left) != 0 {
			t.Errorf("node %s: the refused upload left %d files in the inbox", n.Name, len(left))
		}
	}
}

// get sends GET / to a port of the app through moat dial and returns the
// status line, or the error.
func (e *env) get(app string, port int) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := e.m.Client.DialApp(ctx, app, port)
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", app)
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err.Error()
	}
	return status
}

// TestUnplaceableFailsFast: a deploy or a scale whose replicas no node
// can take fails with the scheduler's reasons, well before its deadline;
// a scale that fails goes back to the replicas it had.
func TestUnplaceableFailsFast(t *testing.T) {
	e := newEnv(t, 2)
	big := strings.Replace(spec("big", 1), "memory: 32Mi", "memory: 64Ti", 1) + "update: {deadline: 10m}\n"
	big = strings.Replace(big, "update: {deadline: 20s}\n", "", 1)
	out, errOut, code := e.moatCLI("deploy", "-f", e.specFile(big))
	if code == 0 || !strings.Contains(out+errOut, "cannot be placed") || !strings.Contains(out+errOut, "lack memory") {
		t.Errorf("deploy of a replica too big for any node: exit %d\n%s%s", code, out, errOut)
	}
	r := e.deploy(strings.Replace(spec("web", 2), "memory: 32Mi", "memory: 8Gi", 1))
	e.wait("web", r.Revision)
	sr, err := e.m.Client.Scale(context.Background(), "web", 20)
	if err != nil {
		t.Fatal(err)
	}
	if p := e.wait("web", sr.Revision); p.Status != "failed" || !strings.Contains(p.Message, "cannot be placed") {
		t.Errorf("scale beyond capacity: %+v", p)
	}
	e.waitReplicas("web", "back to 2 ready replicas", 30*time.Second, func(reps []masterapi.Replica) bool {
		n, _ := ready(reps)
		return n == 2 && len(reps) == 2
	})
}

// TestRebalanceAfterNodeReturns: a node powered off and on again gets its
// share back, one replica at a time, never with fewer ready replicas than
// desired; an app that opted out stays where failover put it; a
// scale-down leaves the most crowded node first.
func TestRebalanceAfterNodeReturns(t *testing.T) {
	e := newEnv(t, 3)
	for _, yaml := range []string{spec("web", 3), spec("fixed", 3, "placement: {rebalance: false}")} {
		r := e.deploy(yaml)
		e.wait(strings.SplitN(strings.TrimPrefix(yaml, "name: "), "\n", 2)[0], r.Revision)
	}
	if err := e.c.StopNode("n2"); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"web", "fixed"} {
		e.waitReplicas(app, "replaced off n2", 30*time.Second, func(reps []masterapi.Replica) bool {
			n, nodes := ready(reps)
			return n == 3 && nodes["n2"] == 0
		})
	}
	if err := e.c.StartNode("n2"); err != nil {
		t.Fatal(err)
	}
	e.waitReplicas("web", "one replica per node again", 60*time.Second, func(reps []masterapi.Replica) bool {
		n, nodes := ready(reps)
		if n < 3 {
			t.Errorf("only %d ready replicas while rebalancing: %+v", n, reps)
		}
		return n == 3 && len(reps) == 3 && nodes["n1"] == 1 && nodes["n2"] == 1 && nodes["n3"] == 1
	})
	if _, nodes := ready(e.replicas("fixed")); nodes["n2"] != 0 {
		t.Errorf("fixed (rebalance: false) moved: %v", nodes)
	}
	// fixed has two on one node: scaling it to 2 removes one of those.
	crowded := ""
	_, nodes := ready(e.replicas("fixed"))
	for n, c := range nodes {
		if c == 2 {
			crowded = n
		}
	}
	sr, err := e.m.Client.Scale(context.Background(), "fixed", 2)
	if err != nil {
		t.Fatal(err)
	}
	e.wait("fixed", sr.Revision)
	reps := e.waitReplicas("fixed", "scaled to 2", 30*time.Second, func(reps []masterapi.Replica) bool { return len(reps) == 2 })
	if _, nodes := ready(reps); crowded == "" || nodes[crowded] != 1 {
		t.Errorf("scale-down left %v (the crowded node was %q)", nodes, crowded)
	}
}
