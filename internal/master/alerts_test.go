package master_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// hook is a webhook receiver on loopback: it records each notice it took
// and when, and answers 503 while down.
type hook struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	down bool
	got  []received
	// refused counts the posts it answered 503.
	refused int
}

type received struct {
	masterapi.AlertNotice
	at time.Time
}

func newHook(t *testing.T, down bool) *hook {
	return newHookOn(t, down, nil)
}

// newHookOn is a hook listening on ln (nil: a port of its own).
func newHookOn(t *testing.T, down bool, ln net.Listener) *hook {
	h := &hook{t: t, down: down}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n masterapi.AlertNotice
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook got a post that is not a JSON notice: %v", err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.down {
			h.refused++
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.got = append(h.got, received{n, time.Now()})
	}))
	if ln != nil {
		h.srv.Listener.Close()
		h.srv.Listener = ln
	}
	h.srv.Start()
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) setDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

func (h *hook) notices() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// wait polls until the hook took a notice of status for an alert whose
// key starts with prefix, and returns it.
func (h *hook) wait(status, prefix string, timeout time.Duration) received {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, n := range h.notices() {
			if n.Status == status && strings.HasPrefix(n.Alert.Key, prefix) {
				return n
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no %s notice of %s within %s; got %v", status, prefix, timeout, noticeIDs(h.notices()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func noticeIDs(ns []received) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.ID+" "+n.Alert.Key)
	}
	return out
}

// once checks that no notice came twice.
func once(t *testing.T, name string, ns []received) {
	t.Helper()
	seen := map[string]bool{}
	for _, n := range ns {
		if seen[n.ID] {
			t.Errorf("webhook %s got notice %s twice: %v", name, n.ID, noticeIDs(ns))
		}
		seen[n.ID] = true
	}
}

func (e *env) addHook(name string, h *hook) {
	e.t.Helper()
	if _, errOut, code := e.moatCLI("alerts", "webhook", "add", h.srv.URL+"/"+name, "--name", name); code != 0 {
		e.t.Fatalf("moat alerts webhook add: exit %d\n%s", code, errOut)
	}
}

// badSpec is an app that exits at once, restarting always, never
// healthy: its deploy fails.
func badSpec(name string) string {
	return "name: " + name + "\nimage: probe:1\nargs: [exit, '1']\nresources: {cpu: 100m, memory: 16Mi}\nupdate: {deadline: 5s}\n" +
		"ports: [{name: http, port: 8080}]\nhealth: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}\n"
}

// crashLoop kills the container of a replica each time it runs again,
// until stop is closed: a replica crash-looping after it was deployed
// healthy. It returns when it first killed it.
func crashLoop(t *testing.T, e *env, node, id string, stop <-chan struct{}) (first time.Time, done <-chan struct{}) {
	started, finished := make(chan time.Time, 1), make(chan struct{})
	go func() {
		defer close(finished)
		killed := 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			cs, err := nodeapi.UnixClient(e.c.Socket(node)).Containers(context.Background())
			if err != nil {
				continue
			}
			for _, c := range cs {
				if c.ID == id && c.State == nodeapi.StateRunning && c.Pid > 0 && c.Pid != killed {
					if syscall.Kill(c.Pid, syscall.SIGKILL) == nil {
						if killed == 0 {
							started <- time.Now()
						}
						killed = c.Pid
					}
				}
			}
		}
	}()
	select {
	case first = <-started:
	case <-time.After(30 * time.Second):
		t.Fatalf("replica %s never ran to be killed", id)
	}
	return first, finished
}

// TestAlertCrashLoop: a replica deployed healthy that then crash-loops
// fires crash-loop, and the webhook has it within 30 s of the first
// crash, and restarts past its app's threshold (alerts: {restarts: 3});
// a deploy that fails fires failed-deploy; moat alerts lists them; good
// revisions resolve each, once, and the event log has both ends.
func TestAlertCrashLoop(t *testing.T) {
	e := newEnv(t, 1)
	h := newHook(t, false)
	e.addHook("ops", h)
	r := e.deploy(spec("web", 1, "alerts: {restarts: 3}"))
	e.wait("web", r.Revision)
	e.deploy(badSpec("bad"))
	failed := h.wait("firing", "failed-deploy/bad", 30*time.Second)
	if failed.Alert.App != "bad" || !strings.Contains(failed.Alert.Summary, "revision 1 failed") {
		t.Errorf("failed deploy notice: %+v", failed)
	}

	// Deployed healthy, then killed for memory 5 s after each start.
	leak := strings.Replace(spec("leak", 1), `args: [serve, ":8080"]`, `args: [leak, 5s]`, 1)
	if p := e.wait("leak", e.deploy(leak).Revision); p.Status != "deployed" {
		t.Fatalf("the leaking app's deploy: %+v", p)
	}
	t1 := time.Now()
	oom := h.wait("firing", "oom-kill/leak-", 40*time.Second)
	t.Logf("OOM kill: notified %s after the deploy ended (the kill comes about 5 s after the start)", oom.at.Sub(t1).Round(time.Millisecond))

	replica := e.replicas("web")[0]
	stop := make(chan struct{})
	t0, killer := crashLoop(t, e, replica.Node, replica.ID, stop)
	loop := h.wait("firing", "crash-loop/"+replica.ID, 30*time.Second)
	// The app's own threshold: 3 restarts within the hour.
	restarts := h.wait("firing", "restarts/"+replica.ID, 30*time.Second)
	close(stop)
	if restarts.Alert.Value < 3 || !strings.Contains(restarts.Alert.Summary, "threshold 3") {
		t.Errorf("restarts notice: %+v", restarts.Alert)
	}
	<-killer
	t.Logf("crash loop: notified %s after the first crash (condition since %s after, fired %s after that)", loop.at.Sub(t0).Round(time.Millisecond),
		loop.Alert.Since.Sub(t0).Round(time.Millisecond), loop.Alert.Fired.Sub(loop.Alert.Since).Round(time.Millisecond))
	if loop.Alert.Severity != "critical" || loop.Alert.App != "web" || loop.Alert.Node != replica.Node || !strings.Contains(loop.Alert.Summary, "crash-looping") {
		t.Errorf("crash loop notice: %+v", loop)
	}
	out, errOut, code := e.moatCLI("alerts", "--json")
	var list masterapi.AlertList
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("moat alerts --json: exit %d\n%s%s", code, out, errOut)
	}
	var active []string
	for _, a := range list.Active {
		active = append(active, a.Key)
	}
	for _, want := range []string{loop.Alert.Key, "failed-deploy/bad"} {
		if !slices.Contains(active, want) {
			t.Errorf("moat alerts lists %v, not %s", active, want)
		}
	}
	if out, _, _ := e.moatCLI("alerts"); !strings.Contains(out, loop.Alert.Key) || !strings.Contains(out, "crash-looping") {
		t.Errorf("moat alerts:\n%s", out)
	}

	// Good revisions: both resolve, once.
	r = e.deploy(spec("web", 1, "env: {V: '2'}"))
	e.wait("web", r.Revision)
	r = e.deploy(spec("bad", 1))
	e.wait("bad", r.Revision)
	r = e.deploy(spec("leak", 1))
	e.wait("leak", r.Revision)
	h.wait("resolved", oom.Alert.Key, 30*time.Second)
	h.wait("resolved", loop.Alert.Key, 30*time.Second)
	h.wait("resolved", restarts.Alert.Key, 30*time.Second)
	h.wait("resolved", "failed-deploy/bad", 30*time.Second)
	once(t, "ops", h.notices())
	list, err := e.m.Client.Alerts(context.Background())
	if err != nil || len(list.Active) != 0 || len(list.Resolved) < 4 {
		t.Errorf("alerts after the fix: %+v, %v", list, err)
	}
	events, err := e.m.Client.Events(context.Background(), masterapi.EventQuery{App: "web"})
	var kinds []string
	for _, ev := range events {
		kinds = append(kinds, ev.Kind)
	}
	if err != nil || !slices.Contains(kinds, masterapi.EventAlert) || !slices.Contains(kinds, masterapi.EventAlertResolved) {
		t.Errorf("events of web: %v, %v; want alert and alert-resolved", kinds, err)
	}
	if _, errOut, code := e.moatCLI("alerts", "webhook", "rm", "ops"); code != 0 {
		t.Errorf("moat alerts webhook rm: exit %d\n%s", code, errOut)
	}
	if hooks, err := e.m.Client.Webhooks(context.Background()); err != nil || len(hooks) != 0 {
		t.Errorf("webhooks after rm: %+v, %v", hooks, err)
	}
	if _, errOut, code := e.moatCLI("alerts", "webhook", "add", "ftp://x/"); code == 0 || !strings.Contains(errOut, "http") {
		t.Errorf("an ftp webhook: exit %d\n%s", code, errOut)
	}
}

// TestAlertNodeDownWebhookOutage: nodes stopped and cut off fire node-down
// within 30 s; a webhook answering 503 meanwhile, and one not listening,
// across a restart of the master, receive every notice once they answer
// again, each once,
// in the order the webhook that was up received them; the restarted
// master sends nothing twice.
func TestAlertNodeDownWebhookOutage(t *testing.T) {
	e := newEnv(t, 2)
	up, flaky := newHook(t, false), newHook(t, true)
	e.addHook("up", up)
	e.addHook("flaky", flaky)
	// And one not listening at all until the end.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goneAddr := ln.Addr().String()
	ln.Close()
	if _, errOut, code := e.moatCLI("alerts", "webhook", "add", "http://"+goneAddr+"/gone", "--name", "gone"); code != 0 {
		t.Fatalf("moat alerts webhook add: exit %d\n%s", code, errOut)
	}

	t0 := time.Now()
	if err := e.c.StopNode("n2"); err != nil {
		t.Fatal(err)
	}
	down := up.wait("firing", "node-down/n2", 30*time.Second)
	t.Logf("node down: notified %s after the node was stopped", down.at.Sub(t0).Round(time.Millisecond))

	// Delivery is at least once: a notice the webhook got in the instant
	// before a crash, before the master recorded it, is sent again (the
	// notice's id and state let a receiver tell). So the master is killed
	// once it has recorded the delivery to up.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		hooks, err := e.m.Client.Webhooks(context.Background())
		if err == nil && slices.ContainsFunc(hooks, func(h masterapi.Webhook) bool { return h.Name == "up" && h.Queued == 0 }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery to up not recorded within 30s: %+v, %v", hooks, err)
		}
	}
	// The master restarts while n2 is down and the flaky webhook too: it
	// neither forgets the alert nor sends again what it delivered.
	e.m.Kill9()
	e.m.Start()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		nodes, err := e.m.Client.Nodes(context.Background())
		if err == nil && slices.ContainsFunc(nodes, func(n masterapi.Node) bool { return n.Name == "n1" && n.State == "up" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n1 not up after the master restarted: %+v, %v", nodes, err)
		}
	}
	t1 := time.Now()
	if err := e.c.CutLink("n1"); err != nil {
		t.Fatal(err)
	}
	cut := up.wait("firing", "node-down/n1", 30*time.Second)
	t.Logf("node cut off: notified %s after the cut", cut.at.Sub(t1).Round(time.Millisecond))
	if err := e.c.RestoreLink("n1"); err != nil {
		t.Fatal(err)
	}
	up.wait("resolved", "node-down/n1", 60*time.Second)
	if err := e.c.StartNode("n2"); err != nil {
		t.Fatal(err)
	}
	up.wait("resolved", "node-down/n2", 60*time.Second)

	flaky.mu.Lock()
	refused := flaky.refused
	flaky.mu.Unlock()
	if refused == 0 || len(flaky.notices()) != 0 {
		t.Fatalf("the flaky webhook refused %d posts and took %d", refused, len(flaky.notices()))
	}
	back := time.Now()
	flaky.setDown(false)
	ln, err = net.Listen("tcp", goneAddr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", goneAddr, err)
	}
	gone := newHookOn(t, false, ln)
	want := noticeIDs(up.notices())
	deadline := time.Now().Add(60 * time.Second)
	for (len(flaky.notices()) < len(want) || len(gone.notices()) < len(want)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if g := noticeIDs(gone.notices()); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("the webhook that was not listening got\n%s\nwant\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
	once(t, "gone", gone.notices())
	got := flaky.notices()
	if len(got) > 0 {
		t.Logf("the flaky webhook, back, had its %d queued notices %s later (after %d refusals)", len(got), got[len(got)-1].at.Sub(back).Round(time.Millisecond), refused)
	}
	if d := strings.Join(want, "\n"); d != strings.Join(noticeIDs(got), "\n") {
		t.Errorf("the flaky webhook got\n%s\nwant, as the one up got them,\n%s", strings.Join(noticeIDs(got), "\n"), d)
	}
	if len(want) != 4 {
		t.Errorf("the webhook up got %d notices, want 4 (n2 and n1 firing and resolved):\n%s", len(want), strings.Join(want, "\n"))
	}
	once(t, "up", up.notices())
	once(t, "flaky", got)
	out, _, _ := e.moatCLI("alerts", "webhook", "ls")
	if !strings.Contains(out, "flaky") || !strings.Contains(out, flaky.srv.URL) {
		t.Errorf("moat alerts webhook ls:\n%s", out)
	}
}

// TestAlertMemoryNearLimit: a replica holding more than its app's memory
// threshold (alerts: {memory: 50%}) is alerted from the samples its node
// takes every 10 s and the master pulls, within 30 s of the replica
// starting; scaled away, it resolves.
func TestAlertMemoryNearLimit(t *testing.T) {
	e := newEnv(t, 1)
	h := newHook(t, false)
	e.addHook("ops", h)
	e.deploy("name: mem\nimage: probe:1\nargs: [burn, '20']\nresources: {cpu: 100m, memory: 32Mi}\nalerts: {memory: 50%}\n")
	reps := e.waitReplicas("mem", "running", 30*time.Second, func(reps []masterapi.Replica) bool {
		return len(reps) == 1 && reps[0].State == "ready"
	})
	started := reps[0].Started
	n := h.wait("firing", "memory-near-limit/"+reps[0].ID, 45*time.Second)
	t.Logf("memory near limit: notified %s after the replica started (value %.1f%%)", n.at.Sub(started).Round(time.Millisecond), n.Alert.Value)
	if took := n.at.Sub(started); took > 30*time.Second {
		t.Errorf("notified %s after the replica started, over 30 s", took)
	}
	if n.Alert.Value <= 50 || n.Alert.Value > 100 || !strings.Contains(n.Alert.Summary, "threshold 50%") {
		t.Errorf("memory notice: %+v", n.Alert)
	}
	r := e.deploy("name: mem\nimage: probe:1\nreplicas: 0\nargs: [burn, '20']\nresources: {cpu: 100m, memory: 32Mi}\nalerts: {memory: 50%}\n")
	e.wait("mem", r.Revision)
	h.wait("resolved", n.Alert.Key, 30*time.Second)
	once(t, "ops", h.notices())
}
