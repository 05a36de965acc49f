package master

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
)

func TestPlanLinks(t *testing.T) {
	db := func(id, node string) store.Replica { r := rep(id, node, "t1"); r.App = "db"; return r }
	w := &world{
		nodes: map[string]store.Node{
			"n1": {Name: "n1", Addr: "10.0.0.1:22", User: "root", HostKey: "ssh-ed25519 H1"},
			"n2": {Name: "n2", Addr: "10.0.0.2:22", User: "root", HostKey: "ssh-ed25519 H2"},
			"n3": {Name: "n3", Addr: "10.0.0.3:22", User: "root", HostKey: "ssh-ed25519 H3"},
			"n4": {Name: "n4", Addr: "10.0.0.4:22", User: "root", HostKey: "ssh-ed25519 H4"},
		},
		views: map[string]view{
			"n1": upView(running("w1"), running("d1")),
			"n2": upView(running("w2"), ctr("d2", nodeapi.StateRunning, nodeapi.HealthUnhealthy)),
			"n3": upView(running("d3")),
			"n4": upView(),
		},
		apps: []appState{
			{App: store.App{Name: "web"}, spec: spec.App{Name: "web", Links: []spec.Link{{App: "db", Port: 5432, Local: 6000}}}},
			{App: store.App{Name: "db"}, spec: spec.App{Name: "db"}},
		},
		replicas: []store.Replica{rep("w1", "n1", "t1"), rep("w2", "n2", "t1"), db("d1", "n1"), db("d2", "n2"), db("d3", "n3")},
	}
	id := nodeapi.LinkID("web", "db", 5432)
	keys := map[string]linkKey{id: {Private: "PRIV", Public: "ssh-ed25519 PUB"}}
	link := func(key string, es ...nodeapi.LinkEndpoint) nodeapi.Link {
		return nodeapi.Link{ID: id, Source: "web", Local: 6000, Target: "db", Port: 5432, Key: key, Endpoints: es}
	}
	local := func(c, n string) nodeapi.LinkEndpoint { return nodeapi.LinkEndpoint{Container: c, Node: n} }
	remote := func(c, n string) nodeapi.LinkEndpoint {
		e := w.nodes[n]
		return nodeapi.LinkEndpoint{Container: c, Node: n, Addr: e.Addr, User: e.User, HostKey: e.HostKey}
	}
	grant := nodeapi.LinkGrant{ID: id, Target: "db", Port: 5432, Key: "ssh-ed25519 PUB"}
	want := map[string]nodeapi.LinkTable{
		// n1 reaches its own d1 directly and d3 over SSH; d2 fails its
		// check, so nobody reaches it.
		"n1": {Links: []nodeapi.Link{link("PRIV", local("d1", "n1"), remote("d3", "n3"))}, Grants: []nodeapi.LinkGrant{grant}},
		"n2": {Links: []nodeapi.Link{link("PRIV", remote("d1", "n1"), remote("d3", "n3"))}, Grants: []nodeapi.LinkGrant{grant}},
		// n3 runs no web: only the grant, so web on n1 and n2 reach d3.
		"n3": {Grants: []nodeapi.LinkGrant{grant}},
		"n4": {},
	}
	got := planLinks(w, keys, nil)
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("tables (-want +got):\n%s", diff)
	}
	for n, tab := range got {
		if err := tab.Validate(); err != nil {
			t.Errorf("%s: the node would refuse its table: %v", n, err)
		}
	}

	// Without a key yet, only same-node replicas are reached and nothing is granted.
	got = planLinks(w, nil, nil)
	if l := got["n1"].Links; len(l) != 1 || len(l[0].Endpoints) != 1 || l[0].Key != "" || len(got["n3"].Grants) != 0 {
		t.Fatalf("without a key: %+v", got)
	}

	// Links of a tenant's app name that tenant's apps.
	w.apps[0].Name, w.apps[0].spec.Name = "acme.web", "web"
	if ls := wantedLinks(w); len(ls) != 1 || ls[0].ID != nodeapi.LinkID("acme.web", "acme.db", 5432) {
		t.Fatalf("tenant's link: %+v", ls)
	}

	// An app with no replicas gets no listeners anywhere.
	w.replicas = w.replicas[2:]
	w.apps[0].Name = "web"
	for n, tab := range planLinks(w, keys, nil) {
		if len(tab.Links) != 0 || len(tab.Grants) != 0 {
			t.Errorf("%s: %+v, want nothing when web runs nowhere", n, tab)
		}
	}
}

func TestPlanIngress(t *testing.T) {
	db := func(id, node string) store.Replica { r := rep(id, node, "t1"); r.App = "db"; return r }
	edge := store.Node{Name: "e1", Addr: "10.0.0.9:22", User: "root", HostKey: "ssh-ed25519 HE"}
	edge.Info.Edge = true
	w := &world{
		nodes: map[string]store.Node{
			"n1": {Name: "n1", Addr: "10.0.0.1:22", User: "root", HostKey: "ssh-ed25519 H1"},
			"e1": edge,
		},
		views: map[string]view{"n1": upView(running("d1")), "e1": upView()},
		apps: []appState{
			{App: store.App{Name: "db"}, spec: spec.App{Name: "db", Ingress: []spec.Ingress{
				{Host: "db.example.com", Path: "/", Port: 8080, TLS: spec.TLSACME},
				{Host: "db.example.com", Path: "/admin", Port: 8080, TLS: spec.TLSNone, ProxyProtocol: 2},
			}}},
			// Its certificate is a secret: both routes carry the envelope;
			// a route whose secret is not found is not served.
			{App: store.App{Name: "t2.shop"}, spec: spec.App{Name: "shop", Secrets: []spec.Secret{{Name: "tls", Version: 3}, {Name: "gone", Version: 1}},
				Ingress: []spec.Ingress{
					{Host: "*.shop.example.com", Path: "/", Port: 8080, TLS: spec.TLSFromSecret, TLSSecret: "tls"},
					{Host: "*.shop.example.com", Path: "/api", Port: 8080, TLS: spec.TLSFromSecret, TLSSecret: "tls"},
					{Host: "old.example.com", Path: "/", Port: 8080, TLS: spec.TLSFromSecret, TLSSecret: "gone"},
				}}},
			// Claims db's host and path too: the first app by name keeps it.
			{App: store.App{Name: "zz"}, spec: spec.App{Name: "zz", Ingress: []spec.Ingress{{Host: "db.example.com", Path: "/", Port: 8080}}}},
		},
		replicas: []store.Replica{db("d1", "n1")},
	}
	id := nodeapi.LinkID(nodeapi.EdgeSource, "db", 8080)
	keys := map[string]linkKey{id: {Private: "PRIV", Public: "ssh-ed25519 PUB"}}
	cert := nodeapi.IngressCert{Secret: "tls", Version: 3, Envelope: []byte("AGE")}
	shop := nodeapi.LinkID(nodeapi.EdgeSource, "t2.shop", 8080)
	got := planLinks(w, keys, map[string]nodeapi.IngressCert{certKey("t2.shop", "tls"): cert})
	want := map[string]nodeapi.LinkTable{
		"n1": {Grants: []nodeapi.LinkGrant{{ID: id, Target: "db", Port: 8080, Key: "ssh-ed25519 PUB"}}},
		"e1": {
			Links: []nodeapi.Link{{ID: id, Source: nodeapi.EdgeSource, Target: "db", Port: 8080, Key: "PRIV",
				Endpoints: []nodeapi.LinkEndpoint{{Container: "d1", Node: "n1", Addr: "10.0.0.1:22", User: "root", HostKey: "ssh-ed25519 H1"}}},
				{ID: shop, Source: nodeapi.EdgeSource, Target: "t2.shop", Port: 8080},
				// zz's link stays, without replicas and without a route.
				{ID: nodeapi.LinkID(nodeapi.EdgeSource, "zz", 8080), Source: nodeapi.EdgeSource, Target: "zz", Port: 8080}},
			Ingress: []nodeapi.IngressRoute{
				{Host: "db.example.com", Path: "/", App: "db", Port: 8080, Link: id, ACME: true},
				{Host: "db.example.com", Path: "/admin", App: "db", Port: 8080, Link: id, ProxyProtocol: 2},
				{Host: "*.shop.example.com", Path: "/", App: "t2.shop", Port: 8080, Link: shop, Cert: &cert},
				{Host: "*.shop.example.com", Path: "/api", App: "t2.shop", Port: 8080, Link: shop, Cert: &cert},
				// old.example.com's certificate is not found: not served.
			},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("tables (-want +got):\n%s", diff)
	}
	for n, tab := range got {
		if err := tab.Validate(); err != nil {
			t.Errorf("%s: the node would refuse its table: %v", n, err)
		}
	}

	// A second edge serves the same routes through the same links; an
	// edge running a replica itself reaches it straight (no key needed
	// for it), and the key is granted only where a replica runs.
	edge2 := store.Node{Name: "e2", Addr: "10.0.0.10:22", User: "root", HostKey: "ssh-ed25519 HE2"}
	edge2.Info.Edge = true
	w.nodes["e2"], w.views["e2"] = edge2, upView(running("d2"))
	w.replicas = append(w.replicas, db("d2", "e2"))
	got = planLinks(w, keys, map[string]nodeapi.IngressCert{certKey("t2.shop", "tls"): cert})
	if diff := cmp.Diff(got["e1"].Ingress, got["e2"].Ingress); diff != "" || len(got["e2"].Ingress) != 4 {
		t.Errorf("the second edge's routes differ from the first's (-e1 +e2):\n%s", diff)
	}
	e2db := got["e2"].Links[0]
	if e2db.ID != id || len(e2db.Endpoints) != 2 || e2db.Endpoints[1] != (nodeapi.LinkEndpoint{Container: "d2", Node: "e2"}) {
		t.Errorf("e2's link to db: %+v; want d1 over SSH and its own d2 straight", e2db)
	}
	if len(got["e2"].Grants) != 1 || len(got["n1"].Grants) != 1 || len(got["e1"].Grants) != 0 {
		t.Errorf("grants: n1 %v, e1 %v, e2 %v; want one where db runs (n1, e2)", got["n1"].Grants, got["e1"].Grants, got["e2"].Grants)
	}
}
