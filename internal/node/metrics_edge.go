package node

import (
	"math"
	"slices"
	"time"

	"github.com/moatcloud/moat/internal/edge"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// sampleRoutes reads the edge's per-host counters and turns them into
// route groups, rates over the time since the previous sample.
func (m *metrics) sampleRoutes(now time.Time, srv *edge.Server) []nodeapi.MetricsGroup {
	cur := srv.RouteStats()
	groups := routeGroups(cur, m.routePrev, now.Sub(m.routeAt).Seconds())
	for _, g := range groups {
		g.Values[len(g.Values)-1] = certLeft(cur[g.Name].CertNotAfter, now)
	}
	m.routePrev, m.routeAt = cur, now
	return groups
}

// certLeft is the cert_expiry of a route: seconds from now to notAfter
// (negative once expired), unknown for a zero notAfter (no TLS, or no
// certificate yet). Pure.
func certLeft(notAfter, now time.Time) float64 {
	if notAfter.IsZero() {
		return math.NaN()
	}
	return notAfter.Sub(now).Seconds()
}

// routeGroups are the route groups of a sample, by host in order, values
// in nodeapi.RouteFields order: requests and errors per second, the
// average time to an answer's head over the interval and the slowest, in
// seconds (cert_expiry, unknown here, is sampleRoutes'). A host not in prev (the first sample, a new route) or whose
// counters went backwards has its values unknown, as have the latencies
// of an interval without requests. A host whose name the wire cannot
// carry is left out. Pure.
func routeGroups(cur, prev map[string]edge.RouteStats, dt float64) []nodeapi.MetricsGroup {
	hosts := make([]string, 0, len(cur))
	for h := range cur {
		if len(h) > 0 && len(h) <= nodeapi.MaxGroupName && printableASCII(h) {
			hosts = append(hosts, h)
		}
	}
	slices.Sort(hosts)
	nan := math.NaN()
	out := make([]nodeapi.MetricsGroup, 0, len(hosts))
	for _, h := range hosts {
		c := cur[h]
		v := make([]float64, len(nodeapi.RouteFields))
		for i := range v {
			v[i] = nan
		}
		if p, ok := prev[h]; ok && dt > 0 && c.Requests >= p.Requests && c.Errors >= p.Errors && c.LatencySum >= p.LatencySum {
			n := c.Requests - p.Requests
			v[0] = float64(n) / dt
			v[1] = float64(c.Errors-p.Errors) / dt
			if n > 0 {
				v[2] = (c.LatencySum - p.LatencySum).Seconds() / float64(n)
				v[3] = c.LatencyMax.Seconds()
			}
		}
		out = append(out, nodeapi.MetricsGroup{Kind: nodeapi.GroupRoute, Name: h, Values: v})
	}
	return out
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
