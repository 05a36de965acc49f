package edge

import (
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
)

// Undeliverable is implemented by connections that Config.Dial returns
// when they can tell that bytes surely never reached the far end (the
// node daemon's link streams: refused by the far node's gate, or lost
// with a session before the far node took them).
//
// Undelivered reports, after a write or read failed, whether none of the
// bytes written since the last byte read reached the peer. When it says
// so for a request that failed before any byte of its answer, the edge
// sends the request again on a new connection (Dial picks a replica
// again), whatever its method: the app never saw it. That needs the body
// again, so the edge keeps request bodies of known length up to
// maxReplayBody in memory; a larger body, or one of unknown length
// (chunked), is streamed, and its request is not sent again.
type Undeliverable interface {
	Undelivered() bool
}

// maxReplayBody is the largest request body the edge keeps in memory so
// that it can send its request again.
const maxReplayBody = 64 << 10

// maxAttempts bounds how often one request is sent.
const maxAttempts = 5

// undelivered says whether conn reports that what was written on it since
// the last read never arrived. Connections that cannot tell say no.
func undelivered(conn net.Conn) bool {
	u, ok := conn.(Undeliverable)
	return ok && u.Undelivered()
}

// idempotent is Go's Transport's rule for requests it may send twice
// after a kept-alive connection broke under them: methods that change
// nothing, or a request carrying an idempotency key.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	_, k1 := r.Header["Idempotency-Key"]
	_, k2 := r.Header["X-Idempotency-Key"]
	return k1 || k2
}

// attempt is what one try at sending a request left behind, for
// shouldRetry.
type attempt struct {
	conn    *upConn
	wrote   int  // bytes of the request written
	gotByte bool // any byte of an answer read
}

// retry says whether a request that failed on a.conn goes again (always
// on a new connection). Go's Transport sends again a request whose
// kept-alive connection turned out broken, if nothing of the request was
// written or, for idempotent requests, nothing of an answer came back;
// the edge does the same, and also sends again any request the
// connection says never reached the app. Not on another idle
// connection: those an app closed at once (its keep-alive timer) would
// each cost a try, and the old ones may lead to a replica that is gone.
func retry(r *http.Request, a attempt) bool {
	if a.gotByte {
		return false
	}
	if undelivered(a.conn.conn) {
		return true
	}
	return a.conn.reused && (a.wrote == 0 || idempotent(r))
}

// roundTripper sends each request of the ReverseProxy path (upgrades,
// large or streamed bodies) over the Server's current Transport (see
// CloseIdleUpstreams). A request without a body that failed on a
// connection saying it never arrived goes again, unless a byte of an
// answer came (the app had it, whatever the connection says); the
// Transport already sends idempotent ones again after a broken
// kept-alive connection.
type roundTripper struct{ s *Server }

func (t roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		return t.s.transport.Load().RoundTrip(r)
	}
	for try := 1; ; try++ {
		var conn net.Conn
		var answered atomic.Bool // the hooks may run in the Transport's goroutines
		trace := &httptrace.ClientTrace{
			GotConn:              func(i httptrace.GotConnInfo) { conn = i.Conn },
			GotFirstResponseByte: func() { answered.Store(true) },
		}
		resp, err := t.s.transport.Load().RoundTrip(r.WithContext(httptrace.WithClientTrace(r.Context(), trace)))
		if err == nil || conn == nil || answered.Load() || !undelivered(conn) || try == maxAttempts || r.Context().Err() != nil {
			return resp, err
		}
	}
}
