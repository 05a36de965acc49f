package gate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// containerCache keeps what the node daemon last said of the containers
// a link session reached, so that the next stream to one of them costs no
// question over the daemon's socket (about half a millisecond, half of a
// link connection's setup budget).
//
// An entry is used only while all of these hold:
//   - the daemon's events are followed (after their opening snapshot) and
//     none has named the container since it was looked up: its state,
//     labels and ports are as the daemon said;
//   - its process is the one that was running when it was cached (same
//     pid and same start time in /proc): a pid reused by another
//     container's process, before the daemon's event arrives, misses.
//
// While the events are not followed (not yet, or the stream broke) the
// cache is empty and every stream asks the daemon, as without it.
type containerCache struct {
	mu      sync.Mutex
	live    bool
	gen     uint64 // bumped by every event: a lookup that saw one is not cached
	entries map[string]cachedContainer
}

type cachedContainer struct {
	c     nodeapi.Container
	start string // the process's start time, field 22 of /proc/PID/stat
}

func newContainerCache() *containerCache {
	return &containerCache{entries: map[string]cachedContainer{}}
}

// follow keeps the cache in step with the daemon's events until ctx ends,
// subscribing again a second after the stream breaks.
func (k *containerCache) follow(ctx context.Context, api *nodeapi.Client) {
	for ctx.Err() == nil {
		api.Events(ctx, k.see)
		k.reset(false)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// see applies one event: "synced" ends the opening snapshot; any other
// forgets the container it names.
func (k *containerCache) see(e nodeapi.Event) {
	if e.Type == "synced" {
		k.reset(true)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.gen++
	id := e.ID
	if e.Container != nil {
		id = e.Container.ID
	}
	for name, c := range k.entries {
		if name == id || c.c.ID == id {
			delete(k.entries, name)
		}
	}
}

func (k *containerCache) reset(live bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.live = live
	k.gen++
	clear(k.entries)
}

// generation is taken before a lookup and given back to put.
func (k *containerCache) generation() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.gen
}

// get is the cached container by that name, if still good.
func (k *containerCache) get(name string) (nodeapi.Container, bool) {
	k.mu.Lock()
	e, ok := k.entries[name]
	k.mu.Unlock()
	if !ok {
		return nodeapi.Container{}, false
	}
	if start, err := processStart(e.c.Pid); err != nil || start != e.start {
		k.mu.Lock()
		if cur, ok := k.entries[name]; ok && cur.start == e.start {
			delete(k.entries, name)
		}
		k.mu.Unlock()
		return nodeapi.Container{}, false
	}
	return e.c, true
}

// put caches a running container the daemon described, unless an event
// arrived since gen (it may have been about this one) or none are followed.
func (k *containerCache) put(gen uint64, name string, c nodeapi.Container) {
	if c.State != nodeapi.StateRunning || c.Pid == 0 {
		return
	}
	start, err := processStart(c.Pid)
	if err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.live && k.gen == gen {
		k.entries[name] = cachedContainer{c, start}
	}
}

// processStart is a process's start time since boot, in clock ticks: with
// the pid, it names one process for the life of the machine.
func processStart(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	// The command (field 2) is in parentheses and may hold anything: count
	// fields after its last ')'. starttime is field 22, the 20th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: %d fields after the command", pid, len(f))
	}
	return string(f[19]), nil
}
