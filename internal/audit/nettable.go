package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Socket states in /proc/net tables (include/net/tcp_states.h).
const (
	stateListen = 0x0A // TCP_LISTEN
	stateClose  = 0x07 // TCP_CLOSE: what a bound, unconnected UDP socket shows
)

// addrHexLen is the length of the hex local address for each table.
var addrHexLen = map[string]int{"tcp": 8, "udp": 8, "tcp6": 32, "udp6": 32}

// ParseNetTable parses the content of /proc/net/tcp, tcp6, udp or udp6
// (proto says which). TCP: sockets in LISTEN state (st 0A). UDP: bound
// sockets (st 07) with a non-zero local port. Addresses are in the kernel's
// hex form (little-endian words); decode them right for IPv4 and IPv6,
// including IPv4-mapped IPv6.
//
// Every line must have the table's columns and a hex state; the address and
// inode are decoded only for the sockets kept. Errors name the 1-based line.
func ParseNetTable(proto string, data []byte) ([]Socket, error) {
	if _, ok := addrHexLen[proto]; !ok {
		return nil, fmt.Errorf("parse net table: unknown proto %q", proto)
	}
	var out []Socket
	for i, line := range bytes.Split(data, []byte("\n")) {
		s, keep, err := parseNetLine(proto, string(line))
		if err != nil {
			return nil, fmt.Errorf("parse /proc/net/%s line %d: %w", proto, i+1, err)
		}
		if keep {
			out = append(out, s)
		}
	}
	return out, nil
}

// parseNetLine parses one table line; keep is false for the header, blank
// lines and sockets that are not listening.
func parseNetLine(proto, line string) (s Socket, keep bool, err error) {
	f := strings.Fields(line)
	if len(f) == 0 || f[0] == "sl" {
		return Socket{}, false, nil
	}
	if len(f) < 10 {
		return Socket{}, false, fmt.Errorf("want at least 10 fields, got %d", len(f))
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return Socket{}, false, fmt.Errorf("state %q: %w", f[3], err)
	}
	udp := strings.HasPrefix(proto, "udp")
	if (!udp && st != stateListen) || (udp && st != stateClose) {
		return Socket{}, false, nil
	}
	addr, port, err := parseHexAddrPort(proto, f[1])
	if err != nil {
		return Socket{}, false, err
	}
	if udp && port == 0 {
		return Socket{}, false, nil
	}
	inode, err := strconv.ParseUint(f[9], 10, 64)
	if err != nil {
		return Socket{}, false, fmt.Errorf("inode %q: %w", f[9], err)
	}
	return Socket{
		Proto:    proto,
		Address:  addr.String(),
		Port:     int(port),
		Inode:    inode,
		Loopback: addr.Unmap().IsLoopback(),
	}, true, nil
}

// parseHexAddrPort decodes "0100007F:0277" (IPv4) or its 32-digit IPv6 form.
// The kernel prints the address as 32-bit words in host byte order; the
// port is already in host order.
func parseHexAddrPort(proto, s string) (netip.Addr, uint16, error) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	if !ok || len(hexAddr) != addrHexLen[proto] || len(hexPort) != 4 {
		return netip.Addr{}, 0, fmt.Errorf("local address %q: want %d hex digits, a colon and 4", s, addrHexLen[proto])
	}
	raw, err := hex.DecodeString(hexAddr)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("local address %q: %w", s, err)
	}
	// Each printed word is the value of a host-order load of four address bytes.
	for w := 0; w < len(raw); w += 4 {
		binary.NativeEndian.PutUint32(raw[w:], binary.BigEndian.Uint32(raw[w:]))
	}
	addr, _ := netip.AddrFromSlice(raw) // 4 or 16 bytes: cannot fail
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("local port %q: %w", hexPort, err)
	}
	return addr, uint16(port), nil
}
