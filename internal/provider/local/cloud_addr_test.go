package local

import (
	"net/netip"
	"testing"
)

// TestNextAddr: addresses go round the subnet from the last one handed
// out, skipping those in use, so a just-freed one comes last.
func TestNextAddr(t *testing.T) {
	subnet := netip.MustParsePrefix("10.250.7.0/24")
	a := func(host int) netip.Addr { return netip.AddrFrom4([4]byte{10, 250, 7, byte(host)}) }
	used := func(hosts ...int) map[netip.Addr]bool {
		m := map[netip.Addr]bool{}
		for _, h := range hosts {
			m[a(h)] = true
		}
		return m
	}
	all := make([]int, 0, 244)
	for h := 11; h <= 254; h++ {
		all = append(all, h)
	}
	for _, tc := range []struct {
		name string
		last netip.Addr
		used map[netip.Addr]bool
		want netip.Addr // invalid: full
	}{
		{"first", netip.Addr{}, nil, a(11)},
		{"after the last", a(12), used(11, 12), a(13)},
		{"a freed one is not next", a(13), used(11, 13), a(14)},
		{"skips those in use", a(13), used(14, 15), a(16)},
		{"wraps", a(254), used(11), a(12)},
		{"wraps to a freed one last", a(20), used(all[:9]...), a(21)},
		{"only the freed one left", a(30), used(append(append([]int{}, all[:19]...), all[20:]...)...), a(30)},
		{"full", a(40), used(all...), netip.Addr{}},
		{"last from another subnet", netip.MustParseAddr("10.250.9.77"), nil, a(11)},
	} {
		got, ok := nextAddr(subnet, tc.last, tc.used)
		if got != tc.want || ok != tc.want.IsValid() {
			t.Errorf("%s: %v %v, want %v", tc.name, got, ok, tc.want)
		}
	}
}
