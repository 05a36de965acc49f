package master_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

// TestLocalPoolCostAndRemove: a local pool's node shows in moat pool ls
// and moat cost (priced at the local provider's 0); moat pool rm of the
// pool with a node marks it removing (scale refused meanwhile), and the
// pool manager drains and destroys the node, then the pool goes: the
// cloud holds nothing and the master no node of it.
func TestLocalPoolCostAndRemove(t *testing.T) {
	e := newPoolEnv(t, "--pool-interval", "200ms", "--pool-boot-deadline", "90s", "--pool-orphan-every", "1s", "--pool-orphan-grace", "15s")
	moat := moatCLI(t, e.m)
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := moat(args...)
		if code != 0 {
			t.Fatalf("moat %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	run("pool", "add", "web", "--provider", "local", "--min", "1", "--max", "2", "--type", "local-1", "--image", e.image,
		"--local-dir", e.cloudDir, "--label", "tier=web")
	nodes := e.waitPool("web", 1, 2*time.Minute)
	if nodes[0].Labels["tier"] != "web" || nodes[0].Labels["moat-pool"] != "web" {
		t.Errorf("a pool node's labels: %v", nodes[0].Labels)
	}

	if ls := run("pool", "ls"); !strings.Contains(ls, "1/1") || !strings.Contains(ls, "0.00") {
		t.Errorf("moat pool ls:\n%s", ls)
	}
	var cost masterapi.Cost
	if err := json.Unmarshal([]byte(run("cost", "--json")), &cost); err != nil {
		t.Fatal(err)
	}
	if len(cost.Pools) != 1 || cost.Pools[0].Pool != "web" || cost.Pools[0].Nodes != 1 || cost.Pools[0].Monthly == nil ||
		*cost.Pools[0].Monthly != 0 || cost.Pools[0].Unpriced != 0 || len(cost.Tenants) != 1 || cost.Tenants[0].Tenant != "default" {
		t.Errorf("moat cost: %+v", cost)
	}

	if out := run("pool", "rm", "web"); !strings.Contains(out, "draining") {
		t.Errorf("moat pool rm of a pool with a node: %s", out)
	}
	if out, errOut, code := moat("pool", "scale", "web=2"); code == 0 || !strings.Contains(out+errOut, "being removed") {
		t.Errorf("scaling a pool being removed: exit %d %s%s", code, out, errOut)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var ps []masterapi.Pool
		if err := json.Unmarshal([]byte(run("pool", "ls", "--json")), &ps); err != nil {
			t.Fatal(err)
		}
		gone := true
		for _, p := range ps {
			if p.Name == "web" {
				gone = false
				if !p.Removing {
					t.Fatalf("pool web is no longer removing: %+v", p)
				}
			}
		}
		if gone && len(e.poolNodes("web")) == 0 && len(e.machines()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool web not gone within 3 minutes: pools %+v, nodes %v, cloud %v", ps, e.poolNodes("web"), e.machines())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Its servers are forgotten with it.
	if out, errOut, code := moat("pool", "rm", "web"); code == 0 || !strings.Contains(out+errOut, "not found") {
		t.Errorf("moat pool rm again: exit %d %s%s", code, out, errOut)
	}
}
