package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/quantity"
)

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in    string
		parse func(string) (int64, error)
		want  *int64 // nil: no limit
		bad   bool
	}{
		{"4", quantity.ParseMilliCPU, ptr(4000), false},
		{"1500m", quantity.ParseMilliCPU, ptr(1500), false},
		{"8Gi", quantity.ParseBytes, ptr(8 << 30), false},
		{"50", parseCount, ptr(50), false},
		{"0", parseCount, ptr(0), false},
		{"none", parseCount, nil, false},
		{"Unlimited", quantity.ParseBytes, nil, false},
		{"-1", parseCount, nil, true},
		{"lots", parseCount, nil, true},
		{"8 parsecs", quantity.ParseBytes, nil, true},
	}
	for _, tt := range tests {
		got, err := parseLimit(tt.in, tt.parse)
		if (err != nil) != tt.bad || !cmp.Equal(got, tt.want) {
			t.Errorf("parseLimit(%q) = %v, %v", tt.in, show(got), err)
		}
	}
}

func TestQuotaRows(t *testing.T) {
	tn := masterapi.Tenant{Name: "acme", Quota: masterapi.Quota{MilliCPU: ptr(4000), MemoryBytes: ptr(2 << 30), Nodes: ptr(0)},
		Usage: masterapi.Usage{MilliCPU: 1500, MemoryBytes: 1536 << 20, Replicas: 6, Apps: 2, Nodes: 1}}
	want := [][]string{{"QUOTA", "LIMIT", "USED"}, {"cpu", "4", "1500m"}, {"memory", "2GiB", "1.5GiB"},
		{"replicas", "none", "6"}, {"apps", "none", "2"}, {"nodes", "0", "1"}}
	if diff := cmp.Diff(want, quotaRows(tn)); diff != "" {
		t.Errorf("quotaRows (-want +got):\n%s", diff)
	}
	if got := usedOf(3, nil, count); got != "3/-" {
		t.Errorf("usedOf without a limit: %q", got)
	}
}

func TestWithTenants(t *testing.T) {
	rows := [][]string{{"APP", "READY"}, {"web", "1/1"}, {"web", "2/2"}}
	tenants := []string{"acme", "beta"}
	if got := withTenants(rows, false, nil); !cmp.Equal(got, rows) {
		t.Errorf("one tenant: %v", got)
	}
	want := [][]string{{"APP", "TENANT", "READY"}, {"web", "acme", "1/1"}, {"web", "beta", "2/2"}}
	if got := withTenants(rows, true, func(i int) string { return tenants[i] }); !cmp.Equal(got, want) {
		t.Errorf("several tenants: %v", got)
	}
	if got := nodeTenant(masterapi.Node{Tenant: "default", Shared: true}); got != "default (shared)" {
		t.Errorf("shared node: %q", got)
	}
}

func ptr(n int64) *int64 { return &n }

func show(p *int64) any {
	if p == nil {
		return "none"
	}
	return *p
}
