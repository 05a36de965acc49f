package enroll_test

import (
	"context"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/testcluster"
)

// TestAddToPool: moat node add --pool puts the node in a static pool
// (its label moat-pool, counted by moat pool ls), which then cannot be
// removed while it holds the node; a cloud pool or an unknown pool is
// refused before anything is installed; without --pool a node is the
// built-in static pool's.
func TestAddToPool(t *testing.T) {
	c := testcluster.NewCluster(t, 2)
	o := newOperator(t, c)
	o.mustMoat("pool", "add", "boxes", "--provider", "static")
	o.mustMoat("pool", "add", "try", "--provider", "local", "--max", "1", "--type", "local-1")

	for _, c := range []struct{ pool, want string }{
		{"try", "created by moat"},
		{"nosuch", "no such pool"},
	} {
		out, errOut, code := o.moat("node", "add", "-F", o.sshConfig, "--pool", c.pool, "n1")
		if code == 0 || !strings.Contains(out+errOut, c.want) {
			t.Errorf("node add --pool %s: exit %d %s%s; want a refusal naming %q", c.pool, code, out, errOut, c.want)
		}
	}
	if n, _ := o.m.Client.Nodes(context.Background()); len(n) != 0 {
		t.Fatalf("refused adds registered nodes: %+v", n)
	}

	o.mustMoat("node", "add", "-F", o.sshConfig, "--pool", "boxes", "n1")
	o.mustMoat("node", "add", "-F", o.sshConfig, "n2")
	nodes, err := o.m.Client.Nodes(context.Background())
	if err != nil || len(nodes) != 2 {
		t.Fatalf("nodes: %+v %v", nodes, err)
	}
	for _, n := range nodes {
		want := map[string]string{"n1": "boxes", "n2": ""}[n.Name]
		if n.Labels["moat-pool"] != want {
			t.Errorf("node %s labelled moat-pool=%q, want %q", n.Name, n.Labels["moat-pool"], want)
		}
	}
	pools, err := o.m.Client.Pools(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pools {
		if want := map[string]int{"static": 1, "boxes": 1, "try": 0}[p.Name]; p.Nodes != want {
			t.Errorf("pool %s has %d nodes, want %d", p.Name, p.Nodes, want)
		}
	}
	if out, errOut, code := o.moat("pool", "rm", "boxes"); code == 0 || !strings.Contains(out+errOut, "n1") || !strings.Contains(out+errOut, "moat node rm") {
		t.Errorf("pool rm of a static pool with a node: exit %d %s%s", code, out, errOut)
	}
}
