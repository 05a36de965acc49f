package edge

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Per-route counters, for the node's metrics: each route host counts its
// requests, the failed ones (answers 5xx, and requests no replica
// answered: the edge's own 502), and the time to the answer's head (what
// a client waits before its first byte; a WebSocket or event stream would
// otherwise count its whole life). Counted with a few atomic adds on the
// request path, read by the node's sampling loop with RouteStats.

// RouteStats are a route host's counters since the edge began routing
// it; LatencyMax is the slowest since the previous RouteStats call.
type RouteStats struct {
	Requests, Errors uint64
	LatencySum       time.Duration // over Requests
	LatencyMax       time.Duration
	// CertNotAfter is when the certificate the edge would serve the host
	// now expires; zero without TLS or a certificate yet (certexpiry.go).
	CertNotAfter time.Time
}

// hostStats are the live counters of one host, shared by its routes and
// kept across SetTable while the host stays in the table.
type hostStats struct {
	requests, errors, latencyNs, maxNs atomic.Uint64
}

// done counts a request answered with status, begun at start.
func (h *hostStats) done(start time.Time, status int) {
	ns := uint64(max(time.Since(start), 0))
	h.requests.Add(1)
	if status >= 500 {
		h.errors.Add(1)
	}
	h.latencyNs.Add(ns)
	for {
		m := h.maxNs.Load()
		if ns <= m || h.maxNs.CompareAndSwap(m, ns) {
			return
		}
	}
}

// statsFor returns the counters of host, made on first use. s.mu held.
func (s *Server) statsFor(host string) *hostStats {
	if s.stats == nil {
		s.stats = map[string]*hostStats{}
	}
	h := s.stats[host]
	if h == nil {
		h = &hostStats{}
		s.stats[host] = h
	}
	return h
}

// RouteStats returns the counters of every host in the table, by host as
// the table has it ("*.example.com", "*" included), and the expiry of the
// certificate each is served with.
func (s *Server) RouteStats() map[string]RouteStats {
	t := s.table.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]RouteStats, len(s.stats))
	for host, h := range s.stats {
		out[host] = RouteStats{
			Requests:     h.requests.Load(),
			Errors:       h.errors.Load(),
			LatencySum:   time.Duration(h.latencyNs.Load()),
			LatencyMax:   time.Duration(h.maxNs.Swap(0)),
			CertNotAfter: s.certNotAfter(t, host),
		}
	}
	return out
}

// countingWriter counts a request on the ReverseProxy path when its
// answer's head is written. Unwrap lets http.ResponseController (which
// ReverseProxy uses to flush and to hijack for upgrades) reach the
// connection's own writer.
type countingWriter struct {
	http.ResponseWriter
	stats   *hostStats
	start   time.Time
	counted bool
}

func (c *countingWriter) WriteHeader(code int) {
	if !c.counted && (code >= 200 || code == http.StatusSwitchingProtocols) {
		c.counted = true
		c.stats.done(c.start, code)
	}
	c.ResponseWriter.WriteHeader(code)
}

// Hijack is how ReverseProxy takes the connection of an upgrade the app
// accepted: it writes the 101 itself, on the connection.
func (c *countingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !c.counted {
		c.counted = true
		c.stats.done(c.start, http.StatusSwitchingProtocols)
	}
	return http.NewResponseController(c.ResponseWriter).Hijack()
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if !c.counted {
		c.counted = true
		c.stats.done(c.start, http.StatusOK)
	}
	return c.ResponseWriter.Write(b)
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
