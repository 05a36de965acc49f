package audit

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// sshdComm is the comm of the OpenSSH listener process.
const sshdComm = "sshd"

// Check builds the findings:
//   - any socket not owned by sshd on a non-loopback address: high ("X listens on ADDR:PORT/PROTO")
//   - a non-sshd socket on loopback only: info (reachable only from the node)
//   - a socket whose owner is unknown: high, loopback or not
//   - sshd listening on a port other than 22 is fine (no finding); sshd on several ports: info
//   - passwordauthentication yes: high; kbdinteractiveauthentication yes (or
//     challengeresponseauthentication yes): warn; permitrootlogin yes: high;
//     permitemptypasswords yes: high; pubkeyauthentication no: warn;
//     x11forwarding yes: info; allowtcpforwarding yes/all: info
//   - missing sshd settings (sshd -T failed): warn "could not read sshd settings"
//
// Findings are sorted high, warn, info, then by text; identical findings
// (the workers of one server, each holding its own SO_REUSEPORT socket on
// the same address) appear once.
func Check(socks []Socket, sshd map[string]string) []Finding {
	return check(socks, sshd, nil)
}

// check is Check with the reason sshd settings are missing, if known.
func check(socks []Socket, sshd map[string]string, sshdErr error) []Finding {
	return sortFindings(append(socketFindings(socks), sshdFindings(sshd, sshdErr)...))
}

// sortFindings orders findings high, warn, info, then by text, and drops
// repeats.
func sortFindings(fs []Finding) []Finding {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)), cmp.Compare(a.What, b.What))
	})
	return slices.Compact(fs)
}

func severityRank(s string) int {
	switch s {
	case sevHigh:
		return 0
	case sevWarn:
		return 1
	}
	return 2
}

// socketFindings judges each socket by its owner and address.
func socketFindings(socks []Socket) []Finding {
	fs := []Finding{}
	sshdPorts := map[int]bool{}
	for _, s := range socks {
		where := endpoint(s)
		switch {
		case s.Pid == 0:
			fs = append(fs, Finding{sevHigh, fmt.Sprintf("unknown owner listens on %s (socket inode %d held by no visible process)", where, s.Inode)})
		case s.Process == sshdComm:
			sshdPorts[s.Port] = true
		case s.Loopback:
			fs = append(fs, Finding{sevInfo, fmt.Sprintf("%s listens on %s (loopback only, reachable only from the node)", ownerName(s), where)})
		default:
			fs = append(fs, Finding{sevHigh, fmt.Sprintf("%s listens on %s", ownerName(s), where)})
		}
	}
	if len(sshdPorts) > 1 {
		fs = append(fs, Finding{sevInfo, "sshd listens on several ports: " + joinPorts(sshdPorts)})
	}
	return fs
}

// endpoint formats a socket as "0.0.0.0:80/tcp" or "[::]:22/tcp6".
func endpoint(s Socket) string {
	if a, err := netip.ParseAddr(s.Address); err == nil && s.Port >= 0 && s.Port <= 0xffff {
		return netip.AddrPortFrom(a, uint16(s.Port)).String() + "/" + s.Proto
	}
	return fmt.Sprintf("%s:%d/%s", s.Address, s.Port, s.Proto)
}

// ownerName is the process's comm; the pid is in the socket list. Leaving
// it out lets the workers of one server, each holding its own SO_REUSEPORT
// socket, collapse into one finding.
func ownerName(s Socket) string {
	if s.Process == "" {
		return fmt.Sprintf("pid %d", s.Pid)
	}
	return s.Process
}

func joinPorts(set map[int]bool) string {
	var ports []string
	for _, p := range slices.Sorted(maps.Keys(set)) {
		ports = append(ports, strconv.Itoa(p))
	}
	return strings.Join(ports, ", ")
}
