package master

import (
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/alert"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	metricstore "github.com/moatcloud/moat/internal/metrics/archive"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// Certificate expiry: the master holds the certificates of ingress routes
// only sealed (secrets' envelopes, the edges' ACME cache), so it reads
// their expiry from the edges' route samples (cert_expiry: seconds left
// on the certificate the edge would serve the host now). The newest route
// sample (Latest) is one edge's; a host's certificate may differ between
// edges (one failed to renew), so every route sample ingested is noted
// per host and edge, and the alert is on the soonest.
//
// What an edge may make the master believe: an expiry of a host some app
// names exactly (the archive's and this check), under its own name (the
// puller's), counted only while the master's records make it an edge, the
// app still exists and its sample is newer than LatestTTL. An edge serves
// every route, so it may report any host: a lying edge can raise a false
// alert of an app's certificate, no more (it serves that app's TLS anyway).

// certSeen is an expiry one edge reported for a host.
type certSeen struct {
	app      string
	notAfter time.Time
	at       time.Time // the sample's time
}

// certsSeen are the expiries noted, host → node → expiry. Its own lock:
// every puller notes, the evaluation reads.
type certsSeen struct {
	mu    sync.Mutex
	hosts map[string]map[string]certSeen
}

// maxCertLeft bounds what a sample's cert_expiry is taken as: a value
// beyond (or infinite) is no nearer to firing, and time.Duration would
// overflow.
const maxCertLeft = 100 * 365 * 24 * time.Hour

// certNotAfter is the expiry a sample taken at at says: NaN none.
func certNotAfter(at time.Time, left float64) (time.Time, bool) {
	if math.IsNaN(left) {
		return time.Time{}, false
	}
	left = max(min(left, maxCertLeft.Seconds()), -maxCertLeft.Seconds())
	return at.Add(time.Duration(left * float64(time.Second))), true
}

// note records node's report of host's certificate, unless an older
// sample than the one noted; no certificate (NaN) forgets it.
func (c *certsSeen) note(node, host, app string, at time.Time, left float64) {
	notAfter, ok := certNotAfter(at, left)
	c.mu.Lock()
	defer c.mu.Unlock()
	byNode := c.hosts[host]
	if old, has := byNode[node]; has && old.at.After(at) {
		return
	}
	if !ok {
		delete(byNode, node)
		if len(byNode) == 0 {
			delete(c.hosts, host)
		}
		return
	}
	if c.hosts == nil {
		c.hosts = map[string]map[string]certSeen{}
	}
	if byNode == nil {
		byNode = map[string]certSeen{}
		c.hosts[host] = byNode
	}
	byNode[node] = certSeen{app: app, notAfter: notAfter, at: at}
}

// certs are the hosts' certificates to judge: per host the soonest
// expiry among the edges that reported it within LatestTTL, of an app
// that exists, by a node that is an edge. What is older, of a removed
// app or of a node no longer an edge is forgotten.
func (c *certsSeen) certs(now time.Time, isEdge func(node string) bool, appExists func(app string) bool) []alert.Cert {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []alert.Cert
	for host, byNode := range c.hosts {
		var soonest *certSeen
		for node, s := range byNode {
			if now.Sub(s.at) > metricstore.LatestTTL || !isEdge(node) || !appExists(s.app) {
				delete(byNode, node)
				continue
			}
			if soonest == nil || s.notAfter.Before(soonest.notAfter) {
				soonest = &s
			}
		}
		if soonest == nil {
			delete(c.hosts, host)
			continue
		}
		out = append(out, alert.Cert{Name: host, App: soonest.app, NotAfter: soonest.notAfter})
	}
	slices.SortFunc(out, func(a, b alert.Cert) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// noteRouteSamples notes the route samples among the newest ones (each
// the newest of one edge).
func (c *certsSeen) noteRouteSamples(samples []masterapi.Latest) {
	for _, l := range samples {
		if l.Kind == masterapi.MetricsRoute && l.App != "" && l.Node != "" {
			c.note(l.Node, l.Name, l.App, l.Time, l.Value("cert_expiry"))
		}
	}
}

// certSink is the metrics sink the puller feeds: the archive, and every
// route sample it took noted per edge.
type certSink struct {
	MetricsSink
	m *Master
}

func (s certSink) Ingest(node string, rec nodeapi.MetricsRecord) error {
	err := s.MetricsSink.Ingest(node, rec)
	if err != nil && !errors.Is(err, errs.ErrForbidden) {
		return err // refused whole (a time ahead of the clock, a bad name)
	}
	var routeApp func(string) (string, bool)
	for _, g := range rec.Groups {
		if g.Kind != nodeapi.GroupRoute {
			continue
		}
		if routeApp == nil {
			routeApp = s.m.metricsIndex.routeApp(s.m)
		}
		if app, ok := routeApp(g.Name); ok {
			s.m.alerts.certs.note(node, g.Name, app, rec.Time, g.Value("cert_expiry"))
			s.m.appScale.noteRate(node, g.Name, rec.Time, g.Value("requests")) // appscale.go
		}
	}
	s.m.appScale.sampled(rec.Groups)
	return err
}
