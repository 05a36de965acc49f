package testcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ListeningInodes returns the socket inodes in LISTEN state (TCP) or bound
// (UDP) from a /proc/net table, e.g. "/proc/%d/net/tcp" with the caller's
// pid filled in (the table is per network namespace).
func ListeningInodes(t testing.TB, table string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf(table, os.Getpid()))
	if err != nil {
		return nil
	}
	udp := strings.Contains(table, "udp")
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		// st 0A is TCP_LISTEN; a UDP socket is "listening" when bound (07).
		if f[3] == "0A" || (udp && f[3] == "07") {
			out[f[9]] = true
		}
	}
	return out
}

// SocketInodes returns the inodes of the sockets a process holds open.
func SocketInodes(t testing.TB, pid int) []string {
	t.Helper()
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	var out []string
	for _, fd := range fds {
		link, err := os.Readlink(fd)
		if err == nil && strings.HasPrefix(link, "socket:[") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"))
		}
	}
	return out
}
