package sshx

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// abort reads how many bytes written to sock its peer has not acknowledged
// (sent or not: SIOCOUTQ), sets sock to be reset when closed, which drops
// them, and closes it, in that order and at once: no acknowledgement can
// arrive between the reading and the close but in a few microseconds. ok
// is false when that cannot be known: not a TCP socket, or not an
// established connection (a peer that sent a FIN or a reset is alive).
func abort(sock net.Conn) (queued int64, ok bool) {
	sc, isSys := sock.(syscall.Conn)
	if !isSys {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	cerr := raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil || info.State != unix.BPF_TCP_ESTABLISHED {
			return
		}
		if err := unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
			return
		}
		q, err := unix.IoctlGetUint32(int(fd), unix.SIOCOUTQ)
		if err != nil {
			return
		}
		queued, ok = int64(q), true
	})
	sock.Close()
	return queued, ok && cerr == nil
}
