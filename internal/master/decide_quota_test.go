package master

import (
	"errors"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/spec"
)

const mi = 1 << 20

func lim(n int64) *int64 { return &n }

func appOf(key string, replicas int, milliCPU, mem int64) appState {
	a := appState{spec: spec.App{Replicas: replicas, Resources: spec.Resources{MilliCPU: milliCPU, MemoryBytes: mem}}}
	a.Name = key
	return a
}

func TestTenantUsage(t *testing.T) {
	apps := []appState{appOf("web", 9, 1000, 64*mi), appOf("acme.web", 3, 500, 512*mi), appOf("acme.db", 1, 2000, 1024*mi), appOf("beta.web", 4, 100, mi)}
	nodes := []store.Node{{Name: "a1", Tenant: "acme"}, {Name: "s1", Tenant: "beta", Shared: true}, {Name: "d1", Tenant: "default"}}
	got := tenantUsage("acme", apps, nodes)
	want := usage{MilliCPU: 3500, MemoryBytes: 2560 * mi, Replicas: 4, Apps: 2, Nodes: 1}
	if got != want {
		t.Errorf("acme uses %+v, want %+v", got, want)
	}
	if got := tenantUsage("beta", apps, nodes); got.Nodes != 1 || got.Apps != 1 {
		t.Errorf("beta uses %+v: its shared node is its own", got)
	}
	if got := tenantUsage("nobody", apps, nodes); got != (usage{}) {
		t.Errorf("a tenant with nothing uses %+v", got)
	}
}

func TestQuotaProblem(t *testing.T) {
	web := func(replicas int, mem int64) usage {
		return appUsage(spec.App{Replicas: replicas, Resources: spec.Resources{MilliCPU: 250, MemoryBytes: mem}})
	}
	tests := []struct {
		name          string
		q             store.Quota
		using         usage
		before, after usage
		what          string
		want          string // "" allowed
	}{
		{"no quota", store.Quota{}, usage{MemoryBytes: 1 << 40}, usage{}, web(100, 1<<30), "this deploy", ""},
		{"memory over", store.Quota{MemoryBytes: lim(2 << 30)}, usage{MemoryBytes: 1536 * mi, Apps: 2},
			usage{}, web(3, 256*mi), "this deploy",
			"tenant acme: memory quota 2GiB: using 1.5GiB, this deploy needs 768MiB more"},
		{"exactly at the quota", store.Quota{MemoryBytes: lim(2 << 30)}, usage{MemoryBytes: 1280 * mi},
			usage{}, web(3, 256*mi), "this deploy", ""},
		{"a new app over the apps quota", store.Quota{Apps: lim(2)}, usage{Apps: 2}, usage{}, web(1, 0), "this deploy",
			"tenant acme: apps quota 2: using 2, this deploy needs 1 more"},
		{"a new revision of an app is no new app", store.Quota{Apps: lim(2)}, usage{Apps: 2}, web(1, 0), web(2, 0), "this deploy", ""},
		{"scale up over replicas and CPU, both named", store.Quota{Replicas: lim(10), MilliCPU: lim(2000)},
			usage{Replicas: 8, MilliCPU: 1000, Apps: 1}, web(4, 0), web(9, 0), "this scale",
			"tenant acme: CPU quota 2: using 1, this scale needs 1250m more; replicas quota 10: using 8, this scale needs 5 more"},
		{"scale down over a lowered quota", store.Quota{Replicas: lim(2)}, usage{Replicas: 8}, web(8, 0), web(5, 0), "this scale", ""},
		{"what is not grown is not checked", store.Quota{Replicas: lim(2)}, usage{Replicas: 8, MemoryBytes: 8 * mi},
			web(8, mi), web(8, 2*mi), "this deploy", ""},
		{"rollback to a bigger revision", store.Quota{MemoryBytes: lim(1 << 30)}, usage{MemoryBytes: 512 * mi},
			web(2, 256*mi), web(2, 1024*mi), "this rollback",
			"tenant acme: memory quota 1GiB: using 512MiB, this rollback needs 1.5GiB more"},
		{"nodes", store.Quota{Nodes: lim(1)}, usage{Nodes: 1}, usage{}, usage{Nodes: 1}, "this node",
			"tenant acme: nodes quota 1: using 1, this node needs 1 more"},
		{"zero quota refuses any", store.Quota{Replicas: lim(0)}, usage{}, usage{}, web(1, 0), "this deploy",
			"tenant acme: replicas quota 0: using 0, this deploy needs 1 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := quotaProblem("acme", tt.q, tt.using, tt.before, tt.after, tt.what)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("allowed, want %q", tt.want)
			case tt.want != "" && (err.Error() != tt.want+": forbidden" || !errors.Is(err, errs.ErrForbidden)):
				t.Errorf("got  %q\nwant %q (forbidden)", err, tt.want)
			}
		})
	}
}
