package edge

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// proxyHeader is what an upstream reads from a PROXY header.
type proxyHeader struct {
	version  int
	unknown  bool
	src, dst netip.AddrPort
}

// readProxyHeader is the upstream's side, written from the specification
// independently of the encoder, for the round trip.
func readProxyHeader(r *bufio.Reader) (proxyHeader, error) {
	peek, err := r.Peek(12)
	if err != nil {
		return proxyHeader{}, err
	}
	if bytes.Equal(peek, proxyV2Sig) {
		return readProxyV2(r)
	}
	return readProxyV1(r)
}

func readProxyV1(r *bufio.Reader) (proxyHeader, error) {
	h := proxyHeader{version: 1}
	line, err := r.ReadString('\n')
	if err != nil || len(line) > 107 || !strings.HasSuffix(line, "\r\n") {
		return h, fmt.Errorf("v1: bad line %q: %v", line, err)
	}
	f := strings.Split(strings.TrimSuffix(line, "\r\n"), " ")
	if len(f) == 2 && f[0] == "PROXY" && f[1] == "UNKNOWN" {
		h.unknown = true
		return h, nil
	}
	if len(f) != 6 || f[0] != "PROXY" || f[1] != "TCP4" && f[1] != "TCP6" {
		return h, fmt.Errorf("v1: bad line %q", line)
	}
	ap := func(a, p string) (netip.AddrPort, error) {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Is4() != (f[1] == "TCP4") || ip.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("v1: address %q", a)
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || strconv.FormatUint(n, 10) != p {
			return netip.AddrPort{}, fmt.Errorf("v1: port %q", p)
		}
		return netip.AddrPortFrom(ip, uint16(n)), nil
	}
	if h.src, err = ap(f[2], f[4]); err != nil {
		return h, err
	}
	h.dst, err = ap(f[3], f[5])
	return h, err
}

func readProxyV2(r *bufio.Reader) (proxyHeader, error) {
	h := proxyHeader{version: 2}
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return h, err
	}
	if hdr[12] != 0x21 {
		return h, fmt.Errorf("v2: version/command %#x", hdr[12])
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[14:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return h, err
	}
	var n int
	switch hdr[13] {
	case 0x00:
		h.unknown = true
		return h, nil
	case 0x11:
		n = 4
	case 0x21:
		n = 16
	default:
		return h, fmt.Errorf("v2: family %#x", hdr[13])
	}
	if len(body) < 2*n+4 {
		return h, errors.New("v2: short addresses")
	}
	s, _ := netip.AddrFromSlice(body[:n])
	d, _ := netip.AddrFromSlice(body[n : 2*n])
	h.src = netip.AddrPortFrom(s, binary.BigEndian.Uint16(body[2*n:]))
	h.dst = netip.AddrPortFrom(d, binary.BigEndian.Uint16(body[2*n+2:]))
	return h, nil
}

func TestProxyHeaderKnown(t *testing.T) {
	src := netip.MustParseAddrPort("192.0.2.1:56324")
	dst := netip.MustParseAddrPort("198.51.100.2:443")
	if got, want := string(appendProxyHeader(nil, 1, src, dst)), "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"; got != want {
		t.Errorf("v1: %q, want %q", got, want)
	}
	want := append(append([]byte{}, proxyV2Sig...), 0x21, 0x11, 0, 12, 192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb)
	if got := appendProxyHeader(nil, 2, src, dst); !bytes.Equal(got, want) {
		t.Errorf("v2: % x, want % x", got, want)
	}
	v6 := netip.MustParseAddrPort("[2001:db8::1]:1")
	if got := string(appendProxyHeader(nil, 1, src, v6)); got != "PROXY UNKNOWN\r\n" {
		t.Errorf("mixed families: %q, want UNKNOWN", got)
	}
}

// FuzzProxyHeaderRoundTrip: whatever addresses the edge has, the header it
// writes is read back by an independent parser as the same addresses, and
// nothing follows it.
func FuzzProxyHeaderRoundTrip(f *testing.F) {
	f.Add(2, []byte{192, 0, 2, 1}, uint16(1), []byte{10, 0, 0, 1}, uint16(443))
	f.Add(1, bytes.Repeat([]byte{0x20}, 16), uint16(65535), bytes.Repeat([]byte{1}, 16), uint16(0))
	f.Add(1, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}, uint16(80), []byte{5, 6, 7, 8}, uint16(80))
	f.Fuzz(func(t *testing.T, version int, s []byte, sp uint16, d []byte, dp uint16) {
		version = 1 + version&1
		sa, _ := netip.AddrFromSlice(s)
		da, _ := netip.AddrFromSlice(d)
		src, dst := netip.AddrPortFrom(sa, sp), netip.AddrPortFrom(da, dp)
		b := appendProxyHeader(nil, version, src, dst)
		r := bufio.NewReader(io.MultiReader(bytes.NewReader(b), strings.NewReader("GET / HTTP/1.1\r\n")))
		h, err := readProxyHeader(r)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		rest, _ := r.ReadString('\n')
		if rest != "GET / HTTP/1.1\r\n" {
			t.Fatalf("%q: header ate into the stream, left %q", b, rest)
		}
		us, ud := netip.AddrPortFrom(sa.Unmap(), sp), netip.AddrPortFrom(da.Unmap(), dp)
		known := sa.IsValid() && da.IsValid() && us.Addr().Is4() == ud.Addr().Is4()
		if h.version != version || h.unknown == known {
			t.Fatalf("%q: got %+v, want version %d known %v", b, h, version, known)
		}
		if known && (h.src != us || h.dst != ud) {
			t.Fatalf("%q: got %v -> %v, want %v -> %v", b, h.src, h.dst, us, ud)
		}
	})
}
