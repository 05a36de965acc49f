package audit

import (
	"net/netip"
	"strings"
	"testing"
)

func FuzzParseNetTable(f *testing.F) {
	for _, seed := range [][]byte{
		table(tcpHeader, tcpSSH, tcpCups, tcpEstab, tcpTimeWait),
		table(tcp6Head, tcp6Any, tcp6Lo, tcp6Mapped, tcp6Global),
		table(udpHeader, udpDHCP, udpConnected, udpPortZero),
		table(tcp6Head, udp6Lo),
		[]byte("   1: 00000000:0016 00000000:0000 0A"),
		[]byte("sl\n\n \x00:"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, proto := range netTables {
			socks, err := ParseNetTable(proto, data)
			if err != nil {
				continue
			}
			for _, s := range socks {
				if s.Proto != proto || s.Port < 0 || s.Port > 0xffff {
					t.Fatalf("ParseNetTable(%s) returned %+v", proto, s)
				}
				if strings.HasPrefix(proto, "udp") && s.Port == 0 {
					t.Fatalf("ParseNetTable(%s) kept unbound %+v", proto, s)
				}
				if _, err := netip.ParseAddr(s.Address); err != nil {
					t.Fatalf("ParseNetTable(%s) address %q: %v", proto, s.Address, err)
				}
			}
		}
	})
}
