package ns

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrHostNetwork: the process pid shares this process's network
// namespace, so a listener "inside" it would be a port of the host.
var ErrHostNetwork = errors.New("the process shares the host's network namespace")

// ListenLoopback listens on 127.0.0.1:port in the network namespace pid is
// in now. A socket belongs to the namespace it was created in, so only its
// creation needs the namespace: that happens on a thread moved there and
// thrown away afterwards; accepting works from any thread. A pid in this
// process's own namespace gets ErrHostNetwork, never a listener.
func ListenLoopback(pid, port int) (net.Listener, error) {
	host, err := hostNetns()
	if err != nil {
		return nil, fmt.Errorf("this process's own network namespace: %w", err)
	}
	var hostSt unix.Stat_t
	if err := unix.Fstat(host, &hostSt); err != nil {
		return nil, fmt.Errorf("stat this process's network namespace: %w", err)
	}
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	Go(func() {
		if err := Join(pid, "net"); err != nil {
			ch <- result{err: err}
			return
		}
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			ch <- result{err: fmt.Errorf("stat the network namespace of pid %d: %w", pid, err)}
			return
		}
		if st.Dev == hostSt.Dev && st.Ino == hostSt.Ino {
			ch <- result{err: ErrHostNetwork}
			return
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ch <- result{ln, err}
	})
	r := <-ch
	return r.ln, r.err
}
