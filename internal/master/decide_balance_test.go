package master

import (
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshx"
)

func TestDecideDialPool(t *testing.T) {
	unhealthy := ctr("unhealthy", nodeapi.StateRunning, nodeapi.HealthUnhealthy)
	booting := ctr("booting", nodeapi.StateRunning, nodeapi.HealthStarting)
	exited := ctr("exited", nodeapi.StateExited, "")
	checked := ctr("checked", nodeapi.StateRunning, nodeapi.HealthHealthy)
	moving := rep("moving", "n1", "t2")
	moving.Note = noteMoving
	other := rep("other", "n1", "t2")
	other.App = "api"
	w := &world{
		nodes: nodes("n1", "n2", "n3", "n4", "drained"),
		views: map[string]view{
			"n1":      upView(running("a"), running("stopped"), unhealthy, booting, exited, checked, running("moving"), running("other")),
			"n2":      upView(running("b")),
			"n3":      downView(ago(time.Second), ago(time.Second)), // declared down: its replicas leave the pool
			"n4":      {state: sshx.Up, synced: false, containers: map[string]nodeapi.Container{"unsynced": running("unsynced")}},
			"drained": upView(running("d")),
		},
		replicas: []store.Replica{rep("a", "n1", "t2"), rep("b", "n2", "t1"), rep("c", "n3", "t2"),
			stopping("stopped", "n1", "t2"), rep("unhealthy", "n1", "t2"), rep("booting", "n1", "t2"),
			rep("exited", "n1", "t2"), rep("checked", "n1", "t2"), rep("pending", "n1", "t2"),
			rep("unsynced", "n4", "t2"), rep("unwatched", "n5", "t2"), moving, rep("d", "drained", "t2"), other},
	}
	w.nodes["drained"] = store.Node{Name: "drained", Cordoned: true, Draining: true}

	pool, leaving := dialPool(w, "web")
	// An old revision's ready replica (b) still serves until it is stopped.
	wantPool := []dialTarget{{"a", "n1"}, {"b", "n2"}, {"checked", "n1"}}
	wantLeaving := []dialTarget{{"moving", "n1"}, {"d", "drained"}}
	if d := cmp.Diff(wantPool, pool); d != "" {
		t.Errorf("pool: ready replicas wanted running, on nodes up and in sync, not leaving (-want +got):\n%s", d)
	}
	if d := cmp.Diff(wantLeaving, leaving); d != "" {
		t.Errorf("leaving: ready replicas moving or on a draining node (-want +got):\n%s", d)
	}
	if pool, leaving := dialPool(w, "nothing"); len(pool)+len(leaving) != 0 {
		t.Errorf("dialPool(app with no replicas) = %v, %v", pool, leaving)
	}
}

func ids(ts []dialTarget) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestBalanceOrder(t *testing.T) {
	abc := []dialTarget{{"a", "n1"}, {"b", "n2"}, {"c", "n3"}}
	tests := []struct {
		name string
		ts   []dialTarget
		open map[string]int
		want []string
	}{
		{"fewest first, then the next least busy", abc, map[string]int{"a": 5, "b": 0, "c": 2}, []string{"b", "c", "a"}},
		{"a replica not counted has none", abc, map[string]int{"a": 1, "c": 2}, []string{"b", "a", "c"}},
		{"one target, however busy", abc[:1], map[string]int{"a": 9}, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(balanceOrder(tt.ts, tt.open, rand.New(rand.NewPCG(1, 2))))
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("order (-want +got):\n%s", d)
			}
		})
	}
	if got := balanceOrder(nil, nil, rand.New(rand.NewPCG(1, 2))); len(got) != 0 {
		t.Errorf("balanceOrder(none) = %v", got)
	}

	// Ties: random, and the same under the same seed.
	tied := map[string]int{"a": 1, "b": 1, "c": 1}
	firsts := map[string]bool{}
	for seed := range uint64(50) {
		got := ids(balanceOrder(abc, tied, rand.New(rand.NewPCG(seed, 0))))
		again := ids(balanceOrder(abc, tied, rand.New(rand.NewPCG(seed, 0))))
		if d := cmp.Diff(got, again); d != "" {
			t.Fatalf("seed %d: two orders (-first +second):\n%s", seed, d)
		}
		firsts[got[0]] = true
	}
	if len(firsts) != 3 {
		t.Errorf("tied replicas: only %v ever came first in 50 seeds", firsts)
	}
	if d := cmp.Diff([]dialTarget{{"a", "n1"}, {"b", "n2"}, {"c", "n3"}}, abc); d != "" {
		t.Errorf("balanceOrder changed its input:\n%s", d)
	}
}

// TestBalanceHeldSpread: connections held open, opened one after another
// and many at once, spread within one of each other over the pool, and
// leaving replicas get none while the pool has any.
func TestBalanceHeldSpread(t *testing.T) {
	pool := []dialTarget{{"a", "n1"}, {"b", "n2"}, {"c", "n3"}}
	leaving := []dialTarget{{"d", "n4"}}
	var d dialCounts
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.order(pool, leaving)
		}()
	}
	wg.Wait()
	for range 50 {
		d.order(pool, leaving)
	}
	got := map[string]int{"a": d.count("a"), "b": d.count("b"), "c": d.count("c"), "d": d.count("d")}
	if want := map[string]int{"a": 50, "b": 50, "c": 50, "d": 0}; !cmp.Equal(want, got) {
		t.Errorf("150 held connections: %v, want %v", got, want)
	}
	if first := d.order(nil, leaving); len(first) != 1 || first[0].ID != "d" || d.count("d") != 1 {
		t.Errorf("with the pool empty the leaving replica is the last resort: order %v, count %d", first, d.count("d"))
	}
}

// TestBalanceCountedClose: a held connection leaves the count when it is
// closed, once, however many goroutines close it; a half-close passes
// through; replicas without connections keep no entry.
func TestBalanceCountedClose(t *testing.T) {
	var d dialCounts
	d.add("a", 2)
	c1, c2 := net.Pipe()
	defer c2.Close()
	conn := d.held(half{c1}, "a")
	if err := conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn.Close()
		}()
	}
	wg.Wait()
	if got := d.count("a"); got != 1 {
		t.Errorf("after 10 closes of one connection of 2: count %d, want 1", got)
	}
	d.add("a", -1)
	if _, ok := d.open["a"]; ok {
		t.Errorf("a replica without connections keeps an entry: %v", d.open)
	}
	plain, p2 := net.Pipe()
	defer p2.Close()
	defer plain.Close()
	if err := d.held(plain, "b").(interface{ CloseWrite() error }).CloseWrite(); err == nil {
		t.Error("CloseWrite on a connection that cannot half-close: no error")
	}
}

// half is a connection that can half-close.
type half struct{ net.Conn }

func (half) CloseWrite() error { return nil }
