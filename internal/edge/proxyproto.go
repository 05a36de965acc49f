package edge

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// The PROXY protocol (haproxy.org/download/2.9/doc/proxy-protocol.txt)
// tells an upstream who the client is, in the first bytes of the
// connection. The edge only writes it; the encoder is a few lines, so no
// library.

// proxyV2Sig is the 12-byte signature that starts a version 2 header.
var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// appendProxyHeader appends a version 1 or 2 header for a TCP connection
// from src to dst. Addresses of different families (after unmapping
// IPv4-in-IPv6), or invalid ones, give the "unknown" form: v1 UNKNOWN,
// v2 AF_UNSPEC, which tell the upstream to use the connection's own
// addresses.
func appendProxyHeader(b []byte, version int, src, dst netip.AddrPort) []byte {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	known := src.IsValid() && dst.IsValid() && src.Addr().Is4() == dst.Addr().Is4()
	if version == 1 {
		if !known {
			return append(b, "PROXY UNKNOWN\r\n"...)
		}
		fam := "TCP6 "
		if src.Addr().Is4() {
			fam = "TCP4 "
		}
		b = append(b, "PROXY "...)
		b = append(b, fam...)
		b = src.Addr().AppendTo(b)
		b = append(b, ' ')
		b = dst.Addr().AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(dst.Port()), 10)
		return append(b, "\r\n"...)
	}
	b = append(b, proxyV2Sig...)
	b = append(b, 0x21) // version 2, command PROXY
	if !known {
		return append(b, 0x00, 0, 0) // AF_UNSPEC, no addresses
	}
	var fam byte = 0x21 // AF_INET6, STREAM
	if src.Addr().Is4() {
		fam = 0x11 // AF_INET, STREAM
	}
	s, d := src.Addr().AsSlice(), dst.Addr().AsSlice()
	b = append(b, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)+len(d)+4))
	b = append(b, s...)
	b = append(b, d...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}
