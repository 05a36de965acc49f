package audit

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Owner is the process holding a socket.
type Owner struct {
	Pid  int
	Comm string
}

// Owners maps socket inodes to the owning pid and comm by scanning
// procRoot/[0-9]*/fd/* symlinks ("socket:[INODE]"). procRoot is "/proc" in
// production; tests pass a temp dir laid out like /proc. Unreadable
// processes are skipped, not fatal. When several processes share a socket
// (a forking server and its workers), the lowest pid, usually the parent,
// owns it.
func Owners(procRoot string) (map[uint64]Owner, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("scan socket owners: %w", err)
	}
	owners := map[uint64]Owner{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		addProcessSockets(owners, procRoot, pid)
	}
	return owners, nil
}

// addProcessSockets records the sockets process pid holds. A process that
// exits or hides its fds mid-scan contributes nothing.
func addProcessSockets(owners map[uint64]Owner, procRoot string, pid int) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return
	}
	comm, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		return
	}
	me := Owner{Pid: pid, Comm: strings.TrimSuffix(string(comm), "\n")}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
		if err != nil {
			continue
		}
		inode, ok := socketInode(link)
		if !ok {
			continue
		}
		if o, seen := owners[inode]; !seen || pid < o.Pid {
			owners[inode] = me
		}
	}
}

// socketInode parses a "socket:[4567]" fd link target.
func socketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	inode, err := strconv.ParseUint(s, 10, 64)
	return inode, err == nil
}

// netTables are the /proc/net tables Listening reads, by proto.
var netTables = []string{"tcp", "tcp6", "udp", "udp6"}

// Listening reads procRoot/net/{tcp,tcp6,udp,udp6} (the caller's network
// namespace) and fills in owners. Missing tables (no IPv6) are skipped.
// Sockets come sorted by proto, port, address and inode.
func Listening(procRoot string) ([]Socket, error) {
	socks := []Socket{}
	for _, proto := range netTables {
		data, err := os.ReadFile(filepath.Join(procRoot, "net", proto))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list listening sockets: %w", err)
		}
		s, err := ParseNetTable(proto, data)
		if err != nil {
			return nil, fmt.Errorf("list listening sockets: %w", err)
		}
		socks = append(socks, s...)
	}
	owners, err := Owners(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list listening sockets: %w", err)
	}
	for i, s := range socks {
		if o, ok := owners[s.Inode]; ok {
			socks[i].Pid, socks[i].Process = o.Pid, o.Comm
		}
	}
	slices.SortFunc(socks, func(a, b Socket) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port),
			cmp.Compare(a.Address, b.Address), cmp.Compare(a.Inode, b.Inode))
	})
	return socks, nil
}
