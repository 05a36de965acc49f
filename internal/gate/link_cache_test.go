package gate

import (
	"os"
	"os/exec"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
)

func running(id string, pid int) nodeapi.Container {
	return nodeapi.Container{ID: id, State: nodeapi.StateRunning, Pid: pid}
}

// TestLinkCache: a container is cached only while the daemon's events are
// followed and none arrived during its lookup; an event naming it, the
// stream breaking, or its pid now naming another process forget it.
func TestLinkCache(t *testing.T) {
	k := newContainerCache()
	me := running("db-1", os.Getpid())

	k.put(k.generation(), "db-1", me)
	if _, ok := k.get("db-1"); ok {
		t.Fatal("cached before the events are followed")
	}
	k.see(nodeapi.Event{Type: "container", Container: &me}) // the opening snapshot
	k.see(nodeapi.Event{Type: "synced"})

	gen := k.generation()
	k.see(nodeapi.Event{Type: "container", Container: &nodeapi.Container{ID: "other"}})
	k.put(gen, "db-1", me)
	if _, ok := k.get("db-1"); ok {
		t.Fatal("cached although an event arrived during its lookup")
	}
	k.put(k.generation(), "db-1", running("db-1", 0))
	k.put(k.generation(), "db-2", nodeapi.Container{ID: "db-2", State: "exited", Pid: os.Getpid()})
	if _, ok := k.get("db-1"); ok {
		t.Fatal("cached without a pid")
	}
	if _, ok := k.get("db-2"); ok {
		t.Fatal("cached while not running")
	}

	k.put(k.generation(), "db-1", me)
	if c, ok := k.get("db-1"); !ok || c.Pid != os.Getpid() {
		t.Fatalf("get = %+v, %v; want the cached container", c, ok)
	}
	k.see(nodeapi.Event{Type: "container", Container: &nodeapi.Container{ID: "other"}})
	if _, ok := k.get("db-1"); !ok {
		t.Fatal("another container's event forgot db-1")
	}
	k.see(nodeapi.Event{Type: "removed", ID: "db-1"})
	if _, ok := k.get("db-1"); ok {
		t.Fatal("still cached after its removal")
	}

	k.put(k.generation(), "db-1", me)
	k.reset(false) // the stream broke
	if _, ok := k.get("db-1"); ok {
		t.Fatal("still cached after the events stopped")
	}
	k.put(k.generation(), "db-1", me)
	if _, ok := k.get("db-1"); ok {
		t.Fatal("cached while the events are not followed")
	}

	// A pid whose process is not the one cached (its start time differs).
	k.reset(true)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	child := running("db-3", cmd.Process.Pid)
	k.put(k.generation(), "db-3", child)
	if _, ok := k.get("db-3"); !ok {
		t.Fatal("a running child not cached")
	}
	k.mu.Lock()
	e := k.entries["db-3"]
	e.start += "0" // as if another process had had this pid when cached
	k.entries["db-3"] = e
	k.mu.Unlock()
	if _, ok := k.get("db-3"); ok {
		t.Fatal("used although the pid names another process now")
	}
	if start, err := processStart(os.Getpid()); err != nil || start == "" {
		t.Fatalf("processStart(self) = %q, %v", start, err)
	}
}
