package master

import (
	"path"
	"slices"
	"strings"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
)

// The decision of what each node serves of links: pure. links.go keeps the
// keys and sends the tables.

// linkKey is what the decision needs of a link's key pair.
type linkKey struct {
	Private string // OpenSSH PEM
	Public  string // authorized_keys form
}

// wantedLinks is every link the apps' current specs ask for, by ID, with
// the source app's key and the link as written.
type wantedLink struct {
	ID, Source, Target string
	spec.Link
}

func wantedLinks(w *world) []wantedLink {
	var out []wantedLink
	for _, a := range w.apps {
		tenant := keyTenant(a.Name)
		for _, l := range a.spec.Links {
			target := store.AppKey(tenant, l.App)
			out = append(out, wantedLink{ID: nodeapi.LinkID(a.Name, target, l.Port), Source: a.Name, Target: target, Link: l})
		}
		// The edge reaches each port an ingress route names through a
		// link of its own, without a listener.
		var ports []int
		for _, in := range a.spec.Ingress {
			if !slices.Contains(ports, in.Port) {
				ports = append(ports, in.Port)
				out = append(out, wantedLink{ID: nodeapi.LinkID(nodeapi.EdgeSource, a.Name, in.Port), Source: nodeapi.EdgeSource,
					Target: a.Name, Link: spec.Link{App: a.Name, Port: in.Port}})
			}
		}
	}
	return out
}

// ingressRoutes is every app's routes; a host and path two apps claim
// goes to the first by name (a deploy refuses the second: checkIngress),
// since an edge refuses a table with one route twice. A route whose
// certificate is a secret carries its envelope, from certs (by certKey).
func ingressRoutes(w *world, certs map[string]nodeapi.IngressCert) []nodeapi.IngressRoute {
	apps := slices.Clone(w.apps)
	slices.SortFunc(apps, func(a, b appState) int { return strings.Compare(a.Name, b.Name) })
	seen := map[string]bool{}
	var out []nodeapi.IngressRoute
	for _, a := range apps {
		for _, in := range a.spec.Ingress {
			key := in.Host + " " + path.Clean(in.Path)
			if seen[key] {
				continue
			}
			seen[key] = true
			c, found := certs[certKey(a.Name, in.TLSSecret)]
			if in.TLS == spec.TLSFromSecret && !found {
				// Its certificate could not be read (ingressCerts logged
				// why): the route is not served, never in plain HTTP.
				continue
			}
			r := nodeapi.IngressRoute{Host: in.Host, Path: in.Path, App: a.Name, Port: in.Port,
				Link: nodeapi.LinkID(nodeapi.EdgeSource, a.Name, in.Port), ACME: in.TLS == spec.TLSACME, ProxyProtocol: in.ProxyProtocol}
			if in.TLS == spec.TLSFromSecret {
				r.Cert = &c
			}
			out = append(out, r)
		}
	}
	return out
}

// edgeNodes are the nodes whose operator made them edges, sorted.
func edgeNodes(w *world) []string {
	var out []string
	for name, n := range w.nodes {
		if n.Info.Edge {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// planLinks is the link table of every node the master knows: for each
// node running (or about to run) replicas of a link's source, the link
// with the replicas it may reach — the dial pool (ready, healthy, not
// leaving; the leaving ones only when nothing else is left, as for moat
// dial) — and, for each node running replicas of a target reached from
// another node, the grant of the link's key. Edge nodes also get every
// ingress route, with the envelopes of certificates held as secrets from
// certs (ingressCerts). A node with nothing gets an empty table, so links
// that went are taken down there.
func planLinks(w *world, keys map[string]linkKey, certs map[string]nodeapi.IngressCert) map[string]nodeapi.LinkTable {
	tables := make(map[string]nodeapi.LinkTable, len(w.nodes))
	for name := range w.nodes {
		tables[name] = nodeapi.LinkTable{}
	}
	running := map[string][]string{} // app key → nodes with replicas the master wants running, sorted
	for _, r := range w.replicas {
		if r.Desired == store.Run && !slices.Contains(running[r.App], r.Node) {
			running[r.App] = append(running[r.App], r.Node)
		}
	}
	for _, ns := range running {
		slices.Sort(ns)
	}
	edges := edgeNodes(w)
	for _, l := range wantedLinks(w) {
		sources := running[l.Source]
		if l.Source == nodeapi.EdgeSource {
			sources = edges
		}
		if len(sources) == 0 {
			continue
		}
		pool, leaving := dialPool(w, l.Target)
		if len(pool) == 0 {
			pool = leaving
		}
		slices.SortFunc(pool, func(a, b dialTarget) int { return strings.Compare(a.ID, b.ID) })
		key := keys[l.ID]
		remote := false
		for _, src := range sources {
			if _, known := tables[src]; !known {
				continue
			}
			link := nodeapi.Link{ID: l.ID, Source: l.Source, Local: l.Local, Target: l.Target, Port: l.Port}
			for _, t := range pool {
				e := nodeapi.LinkEndpoint{Container: t.ID, Node: t.Node}
				if t.Node != src {
					if key.Private == "" {
						continue // no key yet: only this node's replicas
					}
					n := w.nodes[t.Node]
					e.Addr, e.User, e.HostKey = n.Addr, n.User, n.HostKey
					link.Key = key.Private
					remote = true
				}
				link.Endpoints = append(link.Endpoints, e)
			}
			t := tables[src]
			t.Links = append(t.Links, link)
			tables[src] = t
		}
		if !remote || key.Public == "" {
			continue
		}
		// Granted where the target runs, ready or not yet: a replica that
		// becomes ready is reachable as soon as the sources hear of it.
		for _, node := range running[l.Target] {
			if _, known := tables[node]; !known {
				continue
			}
			t := tables[node]
			t.Grants = append(t.Grants, nodeapi.LinkGrant{ID: l.ID, Target: l.Target, Port: l.Port, Key: key.Public})
			tables[node] = t
		}
	}
	if routes := ingressRoutes(w, certs); len(routes) > 0 {
		for _, name := range edges {
			t := tables[name]
			t.Ingress = routes
			tables[name] = t
		}
	}
	for name, t := range tables {
		slices.SortFunc(t.Links, func(a, b nodeapi.Link) int { return strings.Compare(a.ID, b.ID) })
		slices.SortFunc(t.Grants, func(a, b nodeapi.LinkGrant) int { return strings.Compare(a.ID, b.ID) })
		tables[name] = t
	}
	return tables
}

// linkIDs is the set of links wanted, for keeping keys.
func linkIDs(ls []wantedLink) map[string]bool {
	out := make(map[string]bool, len(ls))
	for _, l := range ls {
		out[l.ID] = true
	}
	return out
}
