package master

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/quantity"
	"github.com/moatcloud/moat/internal/spec"
)

// The quota decisions: what a tenant uses, and whether a change that
// grows it stays within the tenant's quota. Pure; tenants.go and
// deploy.go apply them.
//
// What a tenant uses is what its apps' target revisions ask for (each
// app's replicas, and replicas × CPU and memory per replica), not what
// happens to run: a rolling update's surge and a replica on its way out
// do not count, and a deploy cannot slip past its quota by being fast.

// usage is what a tenant uses, or what a change adds to it.
type usage struct {
	MilliCPU    int64
	MemoryBytes int64
	Replicas    int64
	Apps        int64
	Nodes       int64
}

func (u usage) plus(v usage) usage {
	return usage{u.MilliCPU + v.MilliCPU, u.MemoryBytes + v.MemoryBytes, u.Replicas + v.Replicas, u.Apps + v.Apps, u.Nodes + v.Nodes}
}

func (u usage) minus(v usage) usage {
	return usage{u.MilliCPU - v.MilliCPU, u.MemoryBytes - v.MemoryBytes, u.Replicas - v.Replicas, u.Apps - v.Apps, u.Nodes - v.Nodes}
}

// appUsage is what one app's spec asks for.
func appUsage(sp spec.App) usage {
	n := int64(max(sp.Replicas, 0))
	return usage{MilliCPU: n * sp.Resources.MilliCPU, MemoryBytes: n * sp.Resources.MemoryBytes, Replicas: n, Apps: 1}
}

// tenantUsage is what a tenant's apps and nodes use: its own nodes, not
// the shared nodes of others it may run on.
func tenantUsage(tenant string, apps []appState, nodes []store.Node) usage {
	var u usage
	for _, a := range apps {
		if t, _ := store.SplitAppKey(a.Name); t == tenant {
			u = u.plus(appUsage(a.spec))
		}
	}
	for _, n := range nodes {
		if n.Tenant == tenant {
			u.Nodes++
		}
	}
	return u
}

// quotaProblem decides whether a change (what, e.g. "this deploy") that
// makes what it touches use after instead of before stays within the
// tenant's quota, given what the tenant uses now. Only what the change
// grows is checked: scaling down, or a deploy that asks for less memory,
// is never refused, even by a tenant over a quota lowered since. The
// refusal names every quota it exceeds, the use and the request, as in
// "tenant acme: memory quota 2GiB: using 1.5GiB, this deploy needs
// 768MiB more".
func quotaProblem(tenant string, q store.Quota, using, before, after usage, what string) error {
	total := using.minus(before).plus(after)
	var over []string
	check := func(name string, limit *int64, use, total, before, after int64, format func(int64) string) {
		if limit == nil || after <= before || total <= *limit {
			return
		}
		over = append(over, fmt.Sprintf("%s quota %s: using %s, %s needs %s more", name, format(*limit), format(use), what, format(after-before)))
	}
	check("CPU", q.MilliCPU, using.MilliCPU, total.MilliCPU, before.MilliCPU, after.MilliCPU, formatMilliCPU)
	check("memory", q.MemoryBytes, using.MemoryBytes, total.MemoryBytes, before.MemoryBytes, after.MemoryBytes, quantity.FormatBytes)
	check("replicas", q.Replicas, using.Replicas, total.Replicas, before.Replicas, after.Replicas, formatCount)
	check("apps", q.Apps, using.Apps, total.Apps, before.Apps, after.Apps, formatCount)
	check("nodes", q.Nodes, using.Nodes, total.Nodes, before.Nodes, after.Nodes, formatCount)
	if len(over) == 0 {
		return nil
	}
	return fmt.Errorf("tenant %s: %s: %w", tenant, strings.Join(over, "; "), errs.ErrForbidden)
}

// formatMilliCPU prints CPU as the spec and moat tenant quota take it:
// whole cores as "4", the rest in millicores, "1500m".
func formatMilliCPU(m int64) string {
	if m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return strconv.FormatInt(m, 10) + "m"
}

func formatCount(n int64) string { return strconv.FormatInt(n, 10) }
