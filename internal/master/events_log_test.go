package master

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/masterapi"
)

// openEventsMaster opens a master's state with its event log's writer
// running (no nodes, no API).
func openEventsMaster(t *testing.T) *Master {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "master")
	if _, _, err := Init(ctx, dir); err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{Dir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	stop := m.startEvents(ctx)
	t.Cleanup(func() {
		stop()
		m.MetricsStore().Close()
		m.db.Close()
	})
	return m
}

// waitWritten polls until the log holds n events.
func waitWritten(t *testing.T, m *Master, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		id, err := m.db.LastEventID(context.Background())
		if err == nil && id >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events written after 10s, want %d (%v)", id, n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func as(user, tenant string, local bool) context.Context {
	return access.WithCaller(context.Background(), access.Caller{User: user, Tenant: tenant, Local: local})
}

func kindsOf(events []masterapi.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Kind+":"+e.Node+e.Tenant+"/"+e.App)
	}
	return out
}

// TestEventsVisibility: a tenant's caller reads and follows its apps'
// events only, named as it names them; nodes' own events only reach a
// caller allowed to list nodes; a cluster admin's view (tenant "*") has
// every tenant's.
func TestEventsVisibility(t *testing.T) {
	m := openEventsMaster(t)
	m.RecordEvent(masterapi.Event{Kind: masterapi.EventNodeUp, Node: "n1"})
	m.RecordEvent(masterapi.Event{Kind: masterapi.EventDeploy, App: "web", Revision: 1})
	m.RecordEvent(masterapi.Event{Kind: masterapi.EventRestart, App: "acme.api", Node: "n1", Replica: "api-x"})
	waitWritten(t, m, 3)

	cases := []struct {
		name  string
		ctx   context.Context
		q     masterapi.EventQuery
		nodes bool
		want  []string
	}{
		{"root on the socket", as("root", "", true), masterapi.EventQuery{}, true, []string{"node-up:n1/", "deploy:/web"}},
		{"every tenant", as("root", AllTenants, true), masterapi.EventQuery{}, true, []string{"node-up:n1/", "deploy:/web", "restart:n1acme/api"}},
		{"acme's viewer", as("alice", "acme", false), masterapi.EventQuery{}, false, []string{"restart:n1acme/api"}},
		{"acme's app by its name", as("alice", "acme", false), masterapi.EventQuery{App: "api"}, false, []string{"restart:n1acme/api"}},
		{"acme's viewer asking for a default-tenant app", as("alice", "acme", false), masterapi.EventQuery{App: "web"}, false, nil},
		{"default tenant without nodes", as("bob", "default", false), masterapi.EventQuery{}, false, []string{"deploy:/web"}},
		{"a node's, for an admin", as("root", AllTenants, true), masterapi.EventQuery{Node: "n1"}, true, []string{"node-up:n1/", "restart:n1acme/api"}},
		{"the newest", as("root", AllTenants, true), masterapi.EventQuery{Limit: 1}, true, []string{"restart:n1acme/api"}},
	}
	for _, c := range cases {
		got, err := m.Events(c.ctx, c.q, c.nodes)
		if err != nil || fmtList(kindsOf(got)) != fmtList(c.want) {
			t.Errorf("%s: %v, %v; want %v", c.name, kindsOf(got), err, c.want)
		}
	}
	if _, err := m.Events(as("root", "", true), masterapi.EventQuery{Since: "yesterday"}, true); err == nil {
		t.Error("a since that does not parse was taken")
	}

	// Following as acme's viewer: the logged one, then only acme's new ones.
	ctx, cancel := context.WithCancel(as("alice", "acme", false))
	defer cancel()
	got := make(chan masterapi.Event, 10)
	done := make(chan error, 1)
	go func() {
		done <- m.FollowEvents(ctx, masterapi.EventQuery{}, false, func(e masterapi.Event) error { got <- e; return nil })
	}()
	next := func() masterapi.Event {
		t.Helper()
		select {
		case e := <-got:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("nothing followed within 10s")
		}
		return masterapi.Event{}
	}
	if e := next(); e.Kind != masterapi.EventRestart {
		t.Fatalf("first followed %+v; want the logged restart", e)
	}
	m.RecordEvent(masterapi.Event{Kind: masterapi.EventDeploy, App: "web", Revision: 2})
	m.RecordEvent(masterapi.Event{Kind: masterapi.EventNodeDown, Node: "n1"})
	m.RecordEvent(masterapi.Event{Kind: masterapi.EventOOM, App: "acme.api", Replica: "api-x", Message: "killed"})
	if e := next(); e.Kind != masterapi.EventOOM || e.App != "api" || e.Tenant != "acme" {
		t.Fatalf("followed %+v; want acme's OOM kill, the others unseen", e)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("follow ended with %v", err)
	}
	select {
	case e := <-got:
		t.Errorf("followed another: %+v", e)
	default:
	}
}

func fmtList(l []string) string {
	out := ""
	for _, s := range l {
		out += s + ";"
	}
	return out
}
