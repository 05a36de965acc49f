package master_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// tenantSpec is the probe asking for a whole core per replica: a node of
// two CPUs takes two.
func tenantSpec(name string, replicas int) string {
	return strings.Replace(spec(name, replicas, "placement: {spread: true}"), "cpu: 100m", "cpu: 1000m", 1)
}

// TestTenants: two tenants with a node each, and a shared node. Each
// tenant's replicas land only on its own node and the shared one, even
// while another tenant's node stands empty; apps of the same name in two
// tenants are two apps; quota refusals change nothing.
func TestTenants(t *testing.T) {
	c := testcluster.NewCluster(t, 3)
	c.NodeConf = []string{"cpus=2"}
	m := c.StartMaster()
	m.ImportProbe(t, "probe:1")
	ctx := context.Background()
	root := m.Client
	for _, name := range []string{"acme", "beta"} {
		_, err := root.AddTenant(ctx, name)
		if errors.Is(err, errs.ErrUnavailable) {
			t.Skipf("a migration before tenants' is not built yet: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	a1, b1, shared := c.Nodes[0].Name, c.Nodes[1].Name, c.Nodes[2].Name
	// register registers node as name (another name: a node that is not
	// there, for refusals).
	register := func(node, name, tenant string, shared bool) error {
		n, err := c.Node(node)
		if err != nil {
			t.Fatal(err)
		}
		reg := inventory.Node{Name: name, Addr: n.Addr.String() + ":22", User: "root", HostKey: n.HostKey, Enrolled: time.Now(),
			Operator: inventory.Access{Dest: name, SSHConfig: c.SSHConfig}}.Registration()
		reg.Tenant, reg.Shared = tenant, shared
		return root.RegisterNode(ctx, reg)
	}
	for _, n := range []struct {
		name, tenant string
		shared       bool
	}{{a1, "acme", false}, {b1, "beta", false}, {shared, "", true}} {
		c.Install(n.name)
		if err := register(n.name, n.name, n.tenant, n.shared); err != nil {
			t.Fatalf("register %s: %v", n.name, err)
		}
	}
	waitNodesUp(t, root, 3)
	nodes, _ := root.Nodes(ctx)
	tenantOf := map[string]string{}
	for _, n := range nodes {
		tenantOf[n.Name] = n.Tenant
		if n.Shared != (n.Name == shared) {
			t.Errorf("node %s: shared %t", n.Name, n.Shared)
		}
	}
	if want := map[string]string{a1: "acme", b1: "beta", shared: "default"}; !cmp.Equal(tenantOf, want) {
		t.Fatalf("nodes' tenants %v, want %v", tenantOf, want)
	}

	acme, beta := root.InTenant("acme"), root.InTenant("beta")
	// acme fills its node and the shared one; beta's node, empty and
	// the best by every score, gets none of them.
	r1, err := acme.Deploy(ctx, masterapi.DeployRequest{Spec: tenantSpec("web", 4)})
	if err != nil {
		t.Fatal(err)
	}
	if p := watch(t, acme, "web", r1.Revision); p.Status != "deployed" || p.Ready != 4 {
		t.Fatalf("acme's web: %+v", p)
	}
	onlyOn(t, acme, "acme", "web", 4, map[string]int{a1: 2, shared: 2})
	// beta's web is another app: its own revisions, its own node.
	r2, err := beta.Deploy(ctx, masterapi.DeployRequest{Spec: tenantSpec("web", 2)})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Revision != 1 {
		t.Errorf("beta's first web is revision %d", r2.Revision)
	}
	if p := watch(t, beta, "web", r2.Revision); p.Status != "deployed" || p.Ready != 2 {
		t.Fatalf("beta's web: %+v", p)
	}
	onlyOn(t, beta, "beta", "web", 2, map[string]int{b1: 2})
	if apps, _ := root.Apps(ctx); len(apps) != 0 {
		t.Errorf("the default tenant sees apps: %+v", apps)
	}
	if apps, _ := root.InTenant("*").Apps(ctx); len(apps) != 2 || apps[0].Tenant == apps[1].Tenant {
		t.Errorf("every tenant's apps: %+v", apps)
	}

	// One more replica of acme's fits nowhere of acme's: the scale fails
	// fast, naming the tenant, and goes back to 4.
	s, err := acme.Scale(ctx, "web", 5)
	if err != nil {
		t.Fatal(err)
	}
	p := watch(t, acme, "web", s.Revision)
	if p.Status != "failed" || !strings.Contains(p.Message, "no node of tenant acme or shared fits") {
		t.Errorf("a scale past acme's nodes: %+v", p)
	}
	deadline := time.Now().Add(30 * time.Second)
	for apps, _ := acme.Apps(ctx); len(apps) != 1 || apps[0].Status != "deployed"; apps, _ = acme.Apps(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("acme's web not back to a deployed revision: %+v", apps)
		}
		time.Sleep(50 * time.Millisecond)
	}
	onlyOn(t, acme, "acme", "web", 4, map[string]int{a1: 2, shared: 2})
	onlyOn(t, beta, "beta", "web", 2, map[string]int{b1: 2})

	// Quotas: a refusal names the quota, the use and the request, and
	// changes nothing.
	four, mem := int64(4), int64(150<<20)
	if _, err := root.SetQuota(ctx, "acme", masterapi.Quota{Replicas: &four, MemoryBytes: &mem, Nodes: new(int64)}); err != nil {
		t.Fatal(err)
	}
	before := state(t, acme, "web")
	refusals := []struct {
		what string
		try  func() error
		want string
	}{
		{"scale", func() error { _, err := acme.Scale(ctx, "web", 5); return err },
			"replicas quota 4: using 4, this scale needs 1 more"},
		{"deploy of a new app", func() error {
			_, err := acme.Deploy(ctx, masterapi.DeployRequest{Spec: tenantSpec("api", 1)})
			return err
		}, "tenant acme: memory quota 150MiB: using 128MiB, this deploy needs 32MiB more; replicas quota 4: using 4, this deploy needs 1 more"},
		{"deploy asking for more memory", func() error {
			_, err := acme.Deploy(ctx, masterapi.DeployRequest{Spec: strings.Replace(tenantSpec("web", 4), "memory: 32Mi", "memory: 48Mi", 1)})
			return err
		}, "tenant acme: memory quota 150MiB: using 128MiB, this deploy needs 64MiB more"},
		{"node add", func() error { return register(a1, "extra", "acme", false) },
			"tenant acme: nodes quota 0: using 1, this node needs 1 more"},
	}
	for _, r := range refusals {
		err := r.try()
		if !errors.Is(err, errs.ErrForbidden) || !strings.Contains(err.Error(), r.want) {
			t.Errorf("%s: %v\nwant 403 %q", r.what, err, r.want)
		}
	}
	if after := state(t, acme, "web"); !cmp.Equal(before, after) {
		t.Errorf("refusals changed acme's web (-before +after):\n%s", cmp.Diff(before, after))
	}
	if nodes, _ := root.Nodes(ctx); len(nodes) != 3 {
		t.Errorf("a refused node was added: %d nodes", len(nodes))
	}
	if apps, _ := acme.Apps(ctx); len(apps) != 1 {
		t.Errorf("a refused app was made: %+v", apps)
	}
	// Going down is never refused, even over a quota lowered below use.
	if _, err := acme.Scale(ctx, "web", 3); err != nil {
		t.Errorf("scale down within quota: %v", err)
	}
	ts, err := root.Tenants(ctx)
	if err != nil || len(ts) != 3 {
		t.Fatalf("tenants %+v %v", ts, err)
	}
	if u := ts[0].Usage; ts[0].Name != "acme" || u.Replicas != 3 || u.Apps != 1 || u.Nodes != 1 || u.MilliCPU != 3000 {
		t.Errorf("acme's use %+v", ts[0])
	}
}

// appState is what a quota refusal must not change: the app's revisions
// and its replicas.
type appState struct {
	Revisions []masterapi.Revision
	Replicas  []string
}

func state(t *testing.T, c *masterapi.Client, app string) appState {
	t.Helper()
	revs, err := c.Revisions(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	reps, err := c.Replicas(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range reps {
		ids = append(ids, r.ID+"@"+r.Node)
	}
	slices.Sort(ids)
	return appState{revs, ids}
}

// onlyOn checks a tenant's app has n ready replicas, on the nodes want
// says, in those numbers (and every replica is the tenant's and named
// for it).
func onlyOn(t *testing.T, c *masterapi.Client, tenant, app string, n int, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		reps, err := c.Replicas(context.Background(), app)
		if err != nil {
			t.Fatal(err)
		}
		got, nodes := ready(reps)
		if got == n && len(reps) == n && cmp.Equal(nodes, want) {
			for _, r := range reps {
				if r.Tenant != tenant || r.App != app || !strings.HasPrefix(r.ID, tenant+"."+app+"-") {
					t.Errorf("replica %+v", r)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's %s: want %d ready on %v, have %d on %v: %+v", tenant, app, n, want, got, nodes, reps)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func watch(t *testing.T, c *masterapi.Client, app string, rev int) masterapi.Progress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last masterapi.Progress
	err := c.Watch(ctx, app, rev, func(p masterapi.Progress) error { last = p; return nil })
	if err != nil && !strings.Contains(err.Error(), "fail") {
		t.Fatalf("watch %s revision %d: %v (last %+v)", app, rev, err, last)
	}
	if last.App != app {
		t.Errorf("progress of %s names %q", app, last.App)
	}
	return last
}

func waitNodesUp(t *testing.T, c *masterapi.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		nodes, err := c.Nodes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		up := 0
		for _, x := range nodes {
			if x.State == "up" && x.Info.CPUs > 0 {
				up++
			}
		}
		if up >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes not up within 30s: %+v", nodes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
