package master

// Fixtures for the table tests of the master's decisions (decide_*.go).
// These tests build snapshots by hand: they need no root, no nodes, no
// database.

import (
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
	"github.com/moatcloud/moat/internal/sshx"
)

// t0 is "now" in the tests.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// ago is a moment d before t0.
func ago(d time.Duration) time.Time { return t0.Add(-d) }

// upView is a node that is up and in sync, reporting these containers.
func upView(cs ...nodeapi.Container) view {
	v := view{state: sshx.Up, synced: true, containers: map[string]nodeapi.Container{}}
	for _, c := range cs {
		v.containers[c.ID] = c
	}
	return v
}

// downView is a node down since some time, whose lease was last renewed
// at leased.
func downView(since, leased time.Time) view {
	return view{state: sshx.Down, since: since, leased: leased}
}

// ctr is a container of a replica of app web.
func ctr(id, state, health string) nodeapi.Container {
	return nodeapi.Container{ID: id, State: state, Health: health,
		Spec: nodeapi.ContainerSpec{Labels: map[string]string{"moat.app": "web", "moat.replica": id}}}
}

// running is a running container without a health check.
func running(id string) nodeapi.Container { return ctr(id, nodeapi.StateRunning, "") }

// rep is a replica of app web the master wants running, of template tmpl.
func rep(id, node, tmpl string) store.Replica {
	return store.Replica{ID: id, App: "web", Node: node, Template: tmpl, Desired: store.Run}
}

// stopping is rep, being stopped.
func stopping(id, node, tmpl string) store.Replica {
	r := rep(id, node, tmpl)
	r.Desired = store.Stop
	return r
}

// nodes are enrolled nodes by name.
func nodes(names ...string) map[string]store.Node {
	out := map[string]store.Node{}
	for _, n := range names {
		out[n] = store.Node{Name: n}
	}
	return out
}

// webApp is app web at revision 2 (template "t2"), with its spec and its
// revision's status.
func webApp(sp spec.App, status string) appState {
	sp.Name = "web"
	return appState{
		App:  store.App{Name: "web", Revision: 2, Stable: 1},
		rev:  store.Revision{App: "web", Revision: 2, Template: "t2", Status: status, Created: ago(10 * time.Second)},
		spec: sp,
	}
}

// exit is an exit code.
func exit(code int) *int { return &code }
