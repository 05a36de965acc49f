package audit

import (
	"context"
	"fmt"
)

// Intended is a listener the node's operator asked for, such as an edge
// node's HTTP and HTTPS ports: a TCP socket on Port held by process Pid
// (the node daemon). It is reported as What, not as a finding against the
// node's promise; any other socket is judged as usual.
type Intended struct {
	Pid  int
	Port int
	What string // e.g. "edge (intended)"
}

// RunIntended is Run with listeners the operator asked for.
func RunIntended(ctx context.Context, intended []Intended) (Report, error) {
	return runner{procRoot: "/proc", sshdT: execSSHDT, dropIn: readDropIn, oneTime: readOneTime, intended: intended}.run(ctx)
}

// splitIntended marks the sockets that are intended, returns the others
// for judging, and an info finding per intended socket.
func splitIntended(socks []Socket, intended []Intended) (others []Socket, fs []Finding) {
	for i := range socks {
		s := &socks[i]
		for _, in := range intended {
			if s.Pid != 0 && s.Pid == in.Pid && s.Port == in.Port && (s.Proto == "tcp" || s.Proto == "tcp6") {
				s.Intended = in.What
				break
			}
		}
		if s.Intended == "" {
			others = append(others, *s)
			continue
		}
		fs = append(fs, Finding{sevInfo, fmt.Sprintf("%s listens on %s: %s", ownerName(*s), endpoint(*s), s.Intended)})
	}
	return others, fs
}
