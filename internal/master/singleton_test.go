package master_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// TestSingletonNeverTwice: cut off the node running a singleton. The node
// stops it when the master's lease lapses; only after the grace period
// does the master start it elsewhere. Sampled all along, from every node's
// own daemon, two copies never run at once.
func TestSingletonNeverTwice(t *testing.T) {
	e := newEnv(t, 3, "--lease-ttl", "2s", "--singleton-grace", "4s")
	r := e.deploy(spec("db", 1, "singleton: true"))
	if p := e.wait("db", r.Revision); p.Status != "deployed" {
		t.Fatalf("deploy: %+v", p)
	}
	home := e.replicas("db")[0].Node

	var peak atomic.Int32
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := int32(0)
			for _, node := range e.c.Nodes {
				cs, err := nodeapi.UnixClient(e.c.Socket(node.Name)).Containers(context.Background())
				if err != nil {
					continue
				}
				for _, c := range cs {
					if c.State == nodeapi.StateRunning && c.Spec.Labels["moat.app"] == "db" {
						n++
					}
				}
			}
			if n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	cut := time.Now()
	if err := e.c.CutLink(home); err != nil {
		t.Fatal(err)
	}
	reps := e.waitReplicas("db", "the singleton running elsewhere", 40*time.Second, func(reps []masterapi.Replica) bool {
		n, nodes := ready(reps)
		return n == 1 && nodes[home] == 0
	})
	if moved := time.Since(cut); moved < 4*time.Second {
		t.Errorf("the singleton moved %s after the cut, before the 4s grace", moved)
	}
	if err := e.c.RestoreLink(home); err != nil {
		t.Fatal(err)
	}
	e.waitReplicas("db", "one replica after the link is back", 30*time.Second, func(reps []masterapi.Replica) bool {
		return len(reps) == 1 && reps[0].State == "ready"
	})
	close(stop)
	<-done
	if p := peak.Load(); p != 1 {
		t.Errorf("%d copies of the singleton ran at once", p)
	}
	_ = reps
}
