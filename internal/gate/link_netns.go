package gate

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/ns"
)

// netnsDialers connect to ports on the loopback of containers' network
// namespaces from threads that stay in them. A socket belongs to the
// namespace of the thread that creates it; moving a new thread there and
// throwing it away afterwards, as dialInNetns does, costs a thread and a
// setns per connection, about half a millisecond on a small node: too
// much for a link's connection setup. So a thread, once in a namespace,
// serves the next dials there until it has been idle a while. Threads are
// added while all of a namespace's are busy (a slow connect holds one).
//
// A namespace is known by its inode, read from the descriptor the thread
// joins through, not by pid: a pid can be reused by another container's
// process, a namespace the gate holds cannot be given to anyone else.
type netnsDialers struct {
	idle  time.Duration
	mu    sync.Mutex
	pools map[netnsID]*netnsPool
}

type netnsID struct{ dev, ino uint64 }

// netnsPool is one namespace's threads. A thread done with a job counts
// itself idle and waits on jobs; a dial takes one of the idle (under the
// lock) and then sends its job, so a job never waits behind a busy
// thread, and a thread leaves only if no dial has counted on it.
type netnsPool struct {
	jobs    chan dialJob
	threads int
	idle    int
}

type dialJob struct {
	ctx  context.Context
	port int
	done chan dialResult
}

type dialResult struct {
	conn net.Conn
	err  error
}

func newNetnsDialers(idle time.Duration) *netnsDialers {
	return &netnsDialers{idle: idle, pools: map[netnsID]*netnsPool{}}
}

// dial connects to 127.0.0.1:port in the network namespace pid is in now.
func (d *netnsDialers) dial(ctx context.Context, pid, port int) (net.Conn, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the network namespace of pid %d: %w", pid, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat the network namespace of pid %d: %w", pid, err)
	}
	id := netnsID{uint64(st.Dev), st.Ino}
	job := dialJob{ctx: ctx, port: port, done: make(chan dialResult, 1)}
	d.mu.Lock()
	p := d.pools[id]
	if p == nil {
		p = &netnsPool{jobs: make(chan dialJob)}
		d.pools[id] = p
	}
	if p.idle > 0 {
		p.idle--
		d.mu.Unlock()
		unix.Close(fd)
		p.jobs <- job
	} else {
		p.threads++
		d.mu.Unlock()
		d.spawn(id, p, fd, job)
	}
	r := <-job.done
	return r.conn, r.err
}

// spawn starts a thread in the namespace fd names (and closes fd), which
// does job, then the pool's next jobs until it has been idle d.idle.
func (d *netnsDialers) spawn(id netnsID, p *netnsPool, fd int, job dialJob) {
	ns.Go(func() {
		defer d.retire(id, p)
		err := unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			job.done <- dialResult{err: fmt.Errorf("join the network namespace: %w", err)}
			return // the thread, locked, is thrown away
		}
		idle := time.NewTimer(d.idle)
		defer idle.Stop()
		for {
			var nd net.Dialer
			conn, err := nd.DialContext(job.ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(job.port)))
			d.mu.Lock()
			p.idle++
			d.mu.Unlock()
			job.done <- dialResult{conn, err}
			idle.Reset(d.idle)
			select {
			case job = <-p.jobs:
			case <-idle.C:
				if d.leave(p) {
					return
				}
				job = <-p.jobs // a dial counted on this thread
			}
		}
	})
}

// leave says whether an idle thread may go: no dial has counted on it.
func (d *netnsDialers) leave(p *netnsPool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p.idle == 0 {
		return false
	}
	p.idle--
	return true
}

// retire forgets a namespace once its last thread is gone, so that the
// gate holds no namespace of a container that stopped.
func (d *netnsDialers) retire(id netnsID, p *netnsPool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p.threads--
	if p.threads == 0 && d.pools[id] == p {
		delete(d.pools, id)
	}
}

// namespaces is how many namespaces have threads now.
func (d *netnsDialers) namespaces() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pools)
}
