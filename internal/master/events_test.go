package master_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestEventLog: on a real cluster, the nodes coming up, a deploy, a
// revision whose container is killed for memory (failed, rolled back), a
// container killed and restarted, and a node going down are in the event
// log in the order they happened; moat events --follow, started before
// any of it, prints each as it is logged, and --app shows one app's only.
func TestEventLog(t *testing.T) {
	e := newEnv(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	followed := e.followEvents(ctx)

	r1 := e.deploy(spec("web", 1))
	e.wait("web", r1.Revision)
	// A revision whose process is killed for memory: it fails, and the
	// master rolls back to the first. (Its health check never passes, so
	// it is not taken for ready in the moment before the kill.)
	oom := `name: web
image: probe:1
replicas: 1
args: [oom]
resources: {cpu: 100m, memory: 32Mi}
ports: [{name: http, port: 8080}]
health: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}
update: {deadline: 20s}
`
	r2 := e.deploy(oom)
	if p := e.waitOver("web", r2.Revision); p.Status != "failed" {
		t.Fatalf("the OOM revision: %+v; want failed", p)
	}
	e.waitApp("web", r2.Revision+1, "deployed")

	// The good replica's process killed: the node restarts it.
	reps := e.replicas("web")
	if len(reps) != 1 {
		t.Fatalf("web's replicas after the rollback: %+v", reps)
	}
	victim := reps[0]
	node := nodeapi.UnixClient(e.c.Socket(victim.Node))
	c, err := node.Container(ctx, victim.ID)
	if err != nil || c.Pid == 0 {
		t.Fatalf("container %s: %+v, %v", victim.ID, c, err)
	}
	if err := syscall.Kill(c.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.pollEvents("web's restart", func(ev []masterapi.Event) bool { return has(ev, masterapi.EventRestart, victim.ID) })

	// A node powered off.
	if err := e.c.StopNode("n2"); err != nil {
		t.Fatal(err)
	}
	events := e.pollEvents("n2 down", func(ev []masterapi.Event) bool { return has(ev, masterapi.EventNodeDown, "n2") })

	want := []struct{ kind, what string }{
		{masterapi.EventNodeUp, "n1"},
		{masterapi.EventDeploy, fmt.Sprintf("web@%d", r1.Revision)},
		{masterapi.EventDeployed, fmt.Sprintf("web@%d", r1.Revision)},
		{masterapi.EventDeploy, fmt.Sprintf("web@%d", r2.Revision)},
		{masterapi.EventOOM, fmt.Sprintf("web@%d", r2.Revision)},
		{masterapi.EventDeployFailed, fmt.Sprintf("web@%d", r2.Revision)},
		{masterapi.EventRollback, fmt.Sprintf("web@%d", r2.Revision+1)},
		{masterapi.EventDeployed, fmt.Sprintf("web@%d", r2.Revision+1)},
		{masterapi.EventRestart, victim.ID},
		{masterapi.EventNodeDown, "n2"},
	}
	i := 0
	for _, ev := range events {
		if i < len(want) && ev.Kind == want[i].kind && matches(ev, want[i].what) {
			i++
		}
	}
	if i < len(want) || !has(events, masterapi.EventNodeUp, "n2") {
		t.Fatalf("the event log lacks %v (or n2's node-up), in order:\n%s", want[min(i, len(want)-1)], describe(events))
	}

	t.Logf("the event log:\n%s", describe(events))
	// What --follow printed: the same events, in the same order, the
	// node going down (logged long after it started) among them.
	deadline := time.Now().Add(30 * time.Second)
	var got []masterapi.Event
	for len(got) < len(events) {
		select {
		case ev := <-followed:
			got = append(got, ev)
		case <-time.After(time.Until(deadline)):
			t.Fatalf("moat events --follow printed %d events of %d:\n%s", len(got), len(events), describe(got))
		}
	}
	for i := range events {
		if got[i].ID != events[i].ID || got[i].Kind != events[i].Kind {
			t.Fatalf("followed event %d is %+v; the log has %+v", i, got[i], events[i])
		}
	}

	// One app's events, through the CLI.
	out, errOut, code := e.moatCLI("events", "--app", "web", "--json")
	var webs []masterapi.Event
	if code != 0 || json.Unmarshal([]byte(out), &webs) != nil {
		t.Fatalf("moat events --app web: exit %d %s\n%s", code, errOut, out)
	}
	for _, ev := range webs {
		if ev.App != "web" {
			t.Errorf("moat events --app web printed %+v", ev)
		}
	}
	if len(webs) < 8 {
		t.Errorf("moat events --app web printed %d events:\n%s", len(webs), describe(webs))
	}
	// And as a table.
	out, _, _ = e.moatCLI("events", "--node", "n2")
	if !strings.Contains(out, "node-down") || strings.Count(out, "\n") < 3 {
		t.Errorf("moat events --node n2:\n%s", out)
	}
}

// followEvents runs moat events --follow --json and sends what it prints.
func (e *env) followEvents(ctx context.Context) <-chan masterapi.Event {
	cmd := exec.CommandContext(ctx, testcluster.Moat(e.t), "events", "--follow", "--json")
	cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+e.m.Socket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	ch := make(chan masterapi.Event, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev masterapi.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				e.t.Errorf("moat events --follow printed %q: %v", sc.Text(), err)
				continue
			}
			ch <- ev
		}
	}()
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	return ch
}

// pollEvents reads the event log until ok holds.
func (e *env) pollEvents(what string, ok func([]masterapi.Event) bool) []masterapi.Event {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ev, err := e.m.Client.Events(context.Background(), masterapi.EventQuery{})
		if err == nil && ok(ev) {
			return ev
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not in the event log within 60s (%v):\n%s", what, err, describe(ev))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitOver follows a revision's rollout to its end, failed or not.
func (e *env) waitOver(app string, rev int) masterapi.Progress {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last masterapi.Progress
	e.m.Client.Watch(ctx, app, rev, func(p masterapi.Progress) error { last = p; return nil })
	return last
}

// waitApp polls until the app's target is rev with status.
func (e *env) waitApp(app string, rev int, status string) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		apps, err := e.m.Client.Apps(context.Background())
		for _, a := range apps {
			if err == nil && a.Name == app && a.Revision == rev && a.Status == status {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s revision %d not %s within 60s: %+v %v", app, rev, status, apps, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// matches: what names the event's app@revision, its replica or its node.
func matches(ev masterapi.Event, what string) bool {
	return what == fmt.Sprintf("%s@%d", ev.App, ev.Revision) || what == ev.Replica || (ev.App == "" && what == ev.Node)
}

func has(events []masterapi.Event, kind, what string) bool {
	for _, ev := range events {
		if ev.Kind == kind && matches(ev, what) {
			return true
		}
	}
	return false
}

func describe(events []masterapi.Event) string {
	var b strings.Builder
	for _, ev := range events {
		fmt.Fprintf(&b, "  %d %s %s node=%s app=%s@%d replica=%s %s\n", ev.ID, ev.Time.Format("15:04:05.000"), ev.Kind, ev.Node, ev.App, ev.Revision, ev.Replica, ev.Message)
	}
	return b.String()
}
