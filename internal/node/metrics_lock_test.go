package node

import (
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// TestSamplerLockOrder: the sampler never waits for a container's lock
// while it holds the containers map's. Remove (and a failed Create's
// discard) take the map's lock while holding the container's, so a sample
// taken during a remove deadlocked the two, and with them every API call
// that looks a container up: the daemon lived on and never answered again.
// Here the test holds the container's lock as Remove does while it
// unmounts and deletes, lets the sampler block on it, then takes the map's
// lock as Remove does next.
func TestSamplerLockOrder(t *testing.T) {
	root := t.TempDir()
	d, err := New(Config{Root: root, AuthorizedKeys: filepath.Join(root, "authorized_keys"), metricsSlots: 8, MetricsInterval: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.metrics.ring.Close()
	c := &container{dir: t.TempDir(), rec: record{ID: "web-1", State: nodeapi.StateExited}}
	d.containers["web-1"] = c

	c.mu.Lock() // Remove, between its container lock and the map's
	held := true
	defer func() {
		if held {
			c.mu.Unlock()
		}
	}()
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		d.sampleGroups(time.Now())
	}()
	waitParked(t, "(*Daemon).sampleGroups")

	got := make(chan error, 1)
	go func() {
		_, err := d.get("web-1") // the map's lock, as Remove's delete takes it
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the containers map's lock is held by the sampler waiting for a container's: a remove now deadlocks the daemon")
	}
	c.mu.Unlock()
	held = false
	select {
	case <-sampled:
	case <-time.After(10 * time.Second):
		t.Fatal("the sample did not end once the container's lock was free")
	}
}

// waitParked waits until a goroutine running fn is blocked on a mutex.
func waitParked(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); ; {
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "[sync.Mutex.Lock") && strings.Contains(g, fn) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine in %s blocked on a mutex within 10s:\n%s", fn, stacks)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
