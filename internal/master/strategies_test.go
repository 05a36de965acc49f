package master_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// byRevision counts an app's ready replicas that should run, per revision.
func byRevision(reps []masterapi.Replica) map[int]int {
	out := map[int]int{}
	for _, r := range reps {
		if r.State == "ready" && r.Desired == "run" {
			out[r.Revision]++
		}
	}
	return out
}

// TestCanaryThenPromote: a canary revision runs its canaries beside the
// old replicas and waits; moat promote lets it replace the rest.
func TestCanaryThenPromote(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	r1 := e.deploy(spec("web", 3))
	e.wait("web", r1.Revision)
	r2 := e.deploy(strings.Replace(spec("web", 3, "env: {COLOUR: green}"), "update: {deadline: 20s}", "update: {strategy: canary, canary: 1, deadline: 20s}", 1))
	if p := e.wait("web", r2.Revision); p.Status != "canary" || p.Ready != 1 {
		t.Fatalf("canary: %+v, want status canary with one ready replica", p)
	}
	if got := byRevision(e.replicas("web")); got[r2.Revision] != 1 || got[r1.Revision] < 2 {
		t.Fatalf("while waiting: ready per revision %v, want 1 canary and the old ones serving", got)
	}
	if err := e.m.Client.Promote(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if p := e.wait("web", r2.Revision); p.Status != "deployed" || p.Ready != 3 || p.Old != 0 {
		t.Fatalf("promoted: %+v", p)
	}
	reps := e.waitReplicas("web", "only the new revision left", 20*time.Second, func(reps []masterapi.Replica) bool {
		got := byRevision(reps)
		return got[r2.Revision] == 3 && len(got) == 1
	})
	// Spread holds for the new revision: one replica per node.
	if _, nodes := ready(reps); len(nodes) != 3 {
		t.Errorf("the new revision's replicas share nodes: %v", nodes)
	}
}

// TestBlueGreen: the new colour comes up whole beside the old one, which
// serves until then: ready replicas never drop below the desired count.
func TestBlueGreen(t *testing.T) {
	e := newEnv(t, 3)
	r1 := e.deploy(spec("web", 2))
	e.wait("web", r1.Revision)

	var mu sync.Mutex
	minReady, maxRunning := 99, 0
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			reps, err := e.m.Client.Replicas(context.Background(), "web")
			if err == nil {
				n, _ := ready(reps)
				running := 0
				for _, r := range reps {
					if r.Desired == "run" {
						running++
					}
				}
				mu.Lock()
				minReady, maxRunning = min(minReady, n), max(maxRunning, running)
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	r2 := e.deploy(strings.Replace(spec("web", 2, "env: {COLOUR: green}"), "update: {deadline: 20s}", "update: {strategy: blue-green, deadline: 20s}", 1))
	p := e.wait("web", r2.Revision)
	close(stop)
	<-watched
	if p.Status != "deployed" || p.Ready != 2 {
		t.Fatalf("blue-green: %+v", p)
	}
	mu.Lock()
	defer mu.Unlock()
	if minReady < 2 {
		t.Errorf("ready replicas dropped to %d during the switch", minReady)
	}
	if maxRunning < 4 {
		t.Errorf("at most %d replicas ran at once; blue-green runs both colours (4) before switching", maxRunning)
	}
	e.waitReplicas("web", "only green left", 20*time.Second, func(reps []masterapi.Replica) bool {
		got := byRevision(reps)
		return got[r2.Revision] == 2 && len(got) == 1
	})
}

// TestLogsDebugDial: through the master, an app's logs merge across its
// replicas, a node's tool runs inside a replica, and a replica's declared
// port is reached over SSH.
func TestLogsDebugDial(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	r := e.deploy(spec("web", 2))
	e.wait("web", r.Revision)
	reps := e.replicas("web")

	t.Run("logs merge replicas", func(t *testing.T) {
		seen := map[string]bool{}
		err := e.m.Client.Logs(ctx, "web", nodeapi.LogOptions{Tail: -1}, func(l masterapi.LogLine) error {
			if strings.Contains(l.Line, "serving on") {
				seen[l.Replica] = true
			}
			return nil
		})
		if err != nil || len(seen) != 2 {
			t.Fatalf("logs: %v; replicas seen saying 'serving on': %v", err, seen)
		}
	})
	t.Run("logs follow", func(t *testing.T) {
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		got := make(chan string, 16)
		go e.m.Client.Logs(fctx, "web", nodeapi.LogOptions{Follow: true, Tail: 1}, func(l masterapi.LogLine) error {
			got <- l.Replica + ": " + l.Line
			return nil
		})
		next := func(what string) string {
			select {
			case line := <-got:
				return line
			case <-time.After(20 * time.Second):
				t.Fatalf("following the logs: nothing for %s", what)
				return ""
			}
		}
		// Each replica's last line first: then both streams are open.
		for range 2 {
			if line := next("the tails"); !strings.Contains(line, "serving on") {
				t.Fatalf("tail line %q", line)
			}
		}
		// A replica stopped by the node says so in its log; follow sees it.
		if _, err := e.m.Client.Scale(ctx, "web", 1); err != nil {
			t.Fatal(err)
		}
		if line := next("a stopped replica"); !strings.Contains(line, "terminated") {
			t.Errorf("followed line %q, want the stopped replica's last words", line)
		}
	})
	t.Run("debug runs a node tool in a replica, over the operator's ssh", func(t *testing.T) {
		out, errOut, code := e.moatCLI("debug", reps[0].ID, "--", "ss", "-Htln")
		if code != 0 || !strings.Contains(out, ":8080") {
			t.Fatalf("moat debug ss: exit %d\n%s%s", code, out, errOut)
		}
		// The tool's status is the command's.
		if _, errOut, code := e.moatCLI("debug", reps[0].ID, "--", "sh", "-c", "exit 7"); code != 7 {
			t.Errorf("moat debug sh -c 'exit 7': exit %d; %s", code, errOut)
		}
	})
	t.Run("dial an app port", func(t *testing.T) {
		conn, err := e.m.Client.DialApp(ctx, "web", 8080)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: web\r\n\r\n")
		status, _ := bufio.NewReader(conn).ReadString('\n')
		if !strings.HasPrefix(status, "HTTP/1.0 200") {
			rest, _ := io.ReadAll(conn)
			t.Fatalf("GET over dial: %q %s", status, rest)
		}
		if _, err := e.m.Client.DialApp(ctx, "web", 9999); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "8080") {
			t.Errorf("dial an undeclared port: %v; want invalid, naming the declared 8080", err)
		}
	})
}
