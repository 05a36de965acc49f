package cli

import (
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/masterapi"
)

func TestParseScale(t *testing.T) {
	s, err := parseScale([]string{"web=3", "batch=0"})
	if err != nil || len(s.Desired) != 2 || s.Desired["web"] != 3 || s.Desired["batch"] != 0 {
		t.Errorf("parseScale: %+v %v", s, err)
	}
	for _, bad := range [][]string{{"web"}, {"=3"}, {"web=x"}, {"web=-1"}, {"web=1", "web=2"}} {
		if _, err := parseScale(bad); err == nil {
			t.Errorf("parseScale(%q): no error", bad)
		}
	}
}

// TestPoolRows: what moat pool ls says of each pool, first things first.
func TestPoolRows(t *testing.T) {
	eur := 13.53
	rows := poolRows([]masterapi.Pool{
		{Name: "static", Provider: "static", Nodes: 2},
		{Name: "web", Provider: "hetzner", Min: 1, Max: 4, Desired: 3, Nodes: 2, Types: []string{"cx22", "cx32"}, Regions: []string{"fsn1"},
			Image: "123", TokenSet: true, Monthly: &eur, Currency: "EUR", Servers: []masterapi.PoolServer{{State: "ready"}, {State: "ready"}, {State: "booting"}}},
		{Name: "try", Provider: "local", Max: 2, Types: []string{"local-1"}},
		{Name: "hot", Provider: "hetzner", Max: 2, Image: "1", Breaker: "open: 4 create calls in the last hour (max 4)"},
		{Name: "old", Provider: "hetzner", Max: 2, Image: "1", Removing: true},
		{Name: "sad", Provider: "hetzner", Max: 2, Image: "1", LastError: strings.Repeat("x", 200)},
	})
	want := [][]string{
		{"static", "static", "2", "-", "-", "-", "-", "-", "—", "ok"},
		{"web", "hetzner", "2/3 (+1 coming)", "1-4", "cx22,cx32", "fsn1", "123", "set", "13.53 EUR", "ok"},
		{"try", "local", "0/0", "0-2", "local-1", "-", "-", "-", "—", "no image (moat pool image try)"},
		{"hot", "hetzner", "0/0", "0-2", "-", "-", "1", "-", "—", "breaker open: 4 create calls in the last hour (max 4)"},
		{"old", "hetzner", "0/0", "0-2", "-", "-", "1", "-", "—", "removing"},
		{"sad", "hetzner", "0/0", "0-2", "-", "-", "1", "-", "—", strings.Repeat("x", 79) + "…"},
	}
	for i, w := range want {
		if got := strings.Join(rows[i+1], "|"); got != strings.Join(w, "|") {
			t.Errorf("row %d:\n got %s\nwant %s", i, got, strings.Join(w, "|"))
		}
	}
}

// TestCostRows: unpriced nodes counted beside the sum, unknown as —.
func TestCostRows(t *testing.T) {
	v, z := 12.0, 4.51
	rows := costRows(masterapi.Cost{
		Pools: []masterapi.CostRow{
			{Pool: "web", Provider: "digitalocean", Tenant: "shop", Nodes: 3, Monthly: &v, Currency: "USD", Unpriced: 1},
			{Pool: "static", Provider: "static", Tenant: "default", Nodes: 2, Unpriced: 2},
		},
		Tenants: []masterapi.CostRow{{Tenant: "shop", Nodes: 3, Monthly: &v, Currency: "USD", Unpriced: 1}},
		Totals:  map[string]float64{"USD": v, "EUR": z},
	})
	got := []string{}
	for _, r := range rows {
		got = append(got, strings.Join(r, "|"))
	}
	want := []string{
		"POOL|PROVIDER|TENANT|NODES|MONTHLY",
		"web|digitalocean|shop|3|12.00 USD + 1 unpriced",
		"static|static|default|2|—",
		"(tenant)||shop|3|12.00 USD + 1 unpriced",
		"(total)||||4.51 EUR",
		"(total)||||12.00 USD",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("cost rows:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
