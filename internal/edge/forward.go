package edge

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The lean path: most requests (no upgrade, no Expect, a body of known
// length up to maxReplayBody) are proxied here, in the handler's
// goroutine: the request is written to a pooled upstream connection in
// one write, the answer read back from it, and the connection returned to
// the pool when the answer's body ends. It does what ReverseProxy does
// for such requests (hop-by-hop headers, X-Forwarded-*, 1xx answers,
// trailers, flushing streams, aborting the client's answer when the
// upstream's breaks), without the Transport's two goroutines per
// connection and the hand-offs to them, which cost the edge about half
// its throughput (see BenchmarkEdge). WebSockets, bodies of unknown
// length or larger, and the odd rest go through ReverseProxy.

// lean says whether r can take the lean path.
func lean(r *http.Request) bool {
	if r.Method == "CONNECT" || r.URL.Opaque != "" || !plainQuery(r.URL.RawQuery) || !plainHost(r.Host) {
		return false
	}
	if r.ContentLength < 0 || r.ContentLength > maxReplayBody {
		return false
	}
	_, upgrade := r.Header["Upgrade"]
	_, expect := r.Header["Expect"]
	return !upgrade && !expect
}

// plainQuery says whether ReverseProxy would send q unchanged: it re-encodes
// queries holding ';' or a bad %-escape, so those go its way.
func plainQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
		}
	}
	return true
}

// plainHost says whether the Transport would send h as it is: ASCII
// bytes that may be in a Host header (no zone's '%'). An HTTP/2
// :authority is checked only for CR, LF and NUL, so r.Host may hold
// anything else ("evil.test/x.example.com", which a wildcard route
// matches, would have apps build links to evil.test); those go
// ReverseProxy's way, whose Transport sends a Unicode name as punycode
// and refuses the rest (502).
func plainHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!$&'()*+,-.:;=[]_~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// reqBufs lends the buffers requests are written from.
var reqBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// forward proxies r to rt's upstream on the lean path.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, rt *route, start time.Time) {
	bp := reqBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 2*maxReplayBody {
			*bp = (*bp)[:0]
			reqBufs.Put(bp)
		}
	}()
	req, ok := s.appendRequest((*bp)[:0], r)
	*bp = req
	if !ok {
		if r.Context().Err() == nil {
			rt.stats.done(start, http.StatusBadRequest)
			http.Error(w, "400 bad request: the body could not be read", http.StatusBadRequest)
		}
		return
	}
	key := rt.host
	if rt.ProxyProtocol != 0 {
		src, dst := clientAddrs(r)
		key = upstreamHost(rt.App, rt.Port, rt.ProxyProtocol, src, dst)
	}
	resp, uc, stop, err := s.roundTrip(w, r, key, req)
	if err != nil {
		if r.Context().Err() == nil {
			rt.stats.done(start, http.StatusBadGateway)
		}
		s.upstreamError(w, r, rt, err)
		return
	}
	rt.stats.done(start, resp.StatusCode)
	s.answer(w, r, resp, uc, stop)
}

// roundTrip sends req (r written out) and reads the answer's head,
// sending again where retry allows. It returns the connection the answer
// is on, and the function that stops its cancellation with r.
func (s *Server) roundTrip(w http.ResponseWriter, r *http.Request, key string, req []byte) (*http.Response, *upConn, func() bool, error) {
	ctx := r.Context()
	fresh := false
	for try := 1; ; try++ {
		uc, err := s.upConn(ctx, key, fresh)
		if err != nil {
			return nil, nil, nil, err
		}
		// The client going away (or the Server closing) ends the
		// exchange: blocked reads and writes fail at once.
		stop := context.AfterFunc(ctx, uc.abort)
		a := attempt{conn: uc}
		a.wrote, err = uc.conn.Write(req)
		var resp *http.Response
		if err == nil {
			resp, err = readAnswer(w, r, uc, &a)
		}
		if err == nil {
			return resp, uc, stop, nil
		}
		stop()
		uc.close()
		if ctx.Err() != nil {
			return nil, nil, nil, fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		if !retry(r, a) || try == maxAttempts {
			return nil, nil, nil, err
		}
		fresh = true
	}
}

// upConn lends a connection for key: an idle one unless fresh, else a
// new one from Dial. An idle one is always checked first for a peer that
// closed it or sent something unasked: apps close idle connections on
// keep-alive timers, and bytes that came after an answer ended (a body
// after a HEAD's or a 304's head, a second answer) would be read as the
// next request's answer, handing one client what was meant for none, or
// another. Go's Transport reads idle connections all the time for this;
// here it is one non-blocking peek per reuse.
func (s *Server) upConn(ctx context.Context, key string, fresh bool) (*upConn, error) {
	p := s.pool.Load()
	for !fresh {
		c := p.get(key)
		if c == nil {
			break
		}
		if peerClosed(c) {
			c.close()
			continue
		}
		return c, nil
	}
	conn, err := s.dialUpstream(ctx, "tcp", key)
	if err != nil {
		return nil, err
	}
	c := &upConn{conn: conn, pool: p, key: key}
	c.head.Conn, c.head.left = conn, -1
	c.br = bufio.NewReaderSize(&c.head, 4<<10)
	c.abort = func() { conn.SetDeadline(aLongTimeAgo) }
	return c, nil
}

// readAnswer reads the head of the answer, passing 1xx answers (but 100,
// which no request on this path asked for) on to the client as
// ReverseProxy does.
func readAnswer(w http.ResponseWriter, r *http.Request, uc *upConn, a *attempt) (*http.Response, error) {
	for n := 0; ; n++ {
		if _, err := uc.br.Peek(1); err != nil {
			return nil, err
		}
		a.gotByte = true
		both, whole := bothLengths(uc.br)
		uc.head.left = maxAnswerHead
		resp, err := http.ReadResponse(uc.br, r)
		uc.head.left = -1
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				return nil, fmt.Errorf("101 Switching Protocols to a request that asked for no upgrade")
			}
			// An answer framed two ways (ReadResponse drops the
			// Content-Length, so it is looked for in the raw head)
			// may end elsewhere than where it was read to: its
			// connection is not used again. A head longer than
			// what was buffered was not all seen; then any answer
			// that could have been framed two ways counts as such
			// (chunked, or HTTP/1.0, where the Transfer-Encoding
			// is ignored).
			if both || !whole && (len(resp.TransferEncoding) > 0 || !resp.ProtoAtLeast(1, 1)) {
				resp.Close = true
			}
			return resp, nil
		}
		if n == 5 {
			return nil, fmt.Errorf("too many 1xx answers")
		}
		if resp.StatusCode == http.StatusContinue {
			continue
		}
		h := w.Header()
		for k, vv := range resp.Header {
			h[k] = vv
		}
		w.WriteHeader(resp.StatusCode)
		clear(h)
	}
}

// bothLengths looks at the answer head at the start of br's buffer,
// without reading: both says whether it has both a Transfer-Encoding and
// a Content-Length field, whole whether the head ends within the buffer.
func bothLengths(br *bufio.Reader) (both, whole bool) {
	b, _ := br.Peek(br.Buffered())
	var te, cl bool
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false, false
		}
		line := b[:i]
		b = b[i+1:]
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			return te && cl, true
		}
		te = te || fieldNamed(line, "transfer-encoding")
		cl = cl || fieldNamed(line, "content-length")
	}
}

// fieldNamed says whether a header line is a field called name (lower
// case), in any case.
func fieldNamed(line []byte, name string) bool {
	if len(line) <= len(name) || line[len(name)] != ':' {
		return false
	}
	for i := range len(name) {
		if c := line[i] | 0x20; c != name[i] {
			return false
		}
	}
	return true
}

// answer passes the upstream's answer on, and the connection back to its
// pool once the body has been read to its end.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, resp *http.Response, uc *upConn, stop func() bool) {
	removeHopByHop(resp.Header)
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h.Add("Trailer", strings.Join(names, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	if err := copyBody(w, resp.Body, streaming(resp)); err != nil {
		stop()
		uc.close()
		if r.Context().Err() == nil {
			s.log.Debug("upstream answer cut", "host", r.Host, "err", err)
		}
		// As ReverseProxy: the client must not take a cut answer for
		// a whole one.
		panic(http.ErrAbortHandler)
	}
	if stop() && !resp.Close && uc.br.Buffered() == 0 {
		uc.pool.put(uc)
	} else {
		uc.close()
	}
	if len(resp.Trailer) == 0 {
		return
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if len(resp.Trailer) == announced {
		for k, vv := range resp.Trailer {
			h[k] = vv
		}
		return
	}
	for k, vv := range resp.Trailer {
		for _, v := range vv {
			h.Add(http.TrailerPrefix+k, v)
		}
	}
}

// streaming says whether every write of the body is flushed at once, as
// ReverseProxy decides: server-sent events and bodies of unknown length.
func streaming(resp *http.Response) bool {
	if resp.ContentLength == -1 {
		return true
	}
	// Parsing every answer's media type costs 2 % of the edge's CPU;
	// only one that may be an event stream is parsed.
	v := resp.Header.Get("Content-Type")
	if len(v) < len("text/event-stream") || !strings.EqualFold(v[:len("text/event-stream")], "text/event-stream") {
		return false
	}
	ct, _, _ := mime.ParseMediaType(v)
	return ct == "text/event-stream"
}

func copyBody(w http.ResponseWriter, body io.Reader, flush bool) error {
	bp := copyBuffers.getp()
	defer copyBuffers.putp(bp)
	buf := *bp
	f, _ := w.(http.Flusher)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if flush && f != nil {
				f.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// hopHeaders are the hop-by-hop headers, as ReverseProxy drops them.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop drops hop-by-hop headers and those Connection names.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// skipped are request headers not copied as they are: hop-by-hop, those
// the edge writes itself, and Forwarded, which ReverseProxy drops too.
var skipped = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true, "Forwarded": true,
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
}

// appendRequest writes r out for the upstream, head and body, as
// ReverseProxy and the Transport would. It reports false if the body
// could not be read.
func (s *Server) appendRequest(b []byte, r *http.Request) ([]byte, bool) {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.URL.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	var dropped map[string]bool
	if conn := r.Header["Connection"]; len(conn) > 0 {
		dropped = map[string]bool{}
		for _, f := range conn {
			for sf := range strings.SplitSeq(f, ",") {
				if sf = strings.TrimSpace(sf); sf != "" {
					dropped[http.CanonicalHeaderKey(sf)] = true
				}
			}
		}
	}
	for k, vv := range r.Header {
		if skipped[k] || dropped[k] {
			continue
		}
		for _, v := range vv {
			b = appendHeader(b, k, v)
		}
	}
	// "Te: trailers" says the client takes trailers: the one value of
	// a hop-by-hop header that is passed on, as a token, whatever
	// Connection names (a sender of TE names it there).
	if hasToken(r.Header["Te"], "trailers") {
		b = appendHeader(b, "Te", "trailers")
	}
	b = s.appendForwarded(b, r)
	switch {
	case r.ContentLength > 0:
		b = appendHeader(b, "Content-Length", strconv.FormatInt(r.ContentLength, 10))
	case r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH":
		b = appendHeader(b, "Content-Length", "0")
	}
	b = append(b, "\r\n"...)
	if r.ContentLength > 0 {
		return appendBody(b, r.Body, int(r.ContentLength))
	}
	return b, true
}

// appendBody reads n bytes of body onto b. Room is made as they come, not
// for all n at once: a client that declares 64 KiB and sends little (for
// as long as it likes: bodies have no deadline) holds about what it
// sent, not 64 KiB per connection.
func appendBody(b []byte, body io.Reader, n int) ([]byte, bool) {
	end := len(b) + n
	for len(b) < end {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(end-len(b), max(cap(b), 4<<10)))
		}
		m, err := body.Read(b[len(b):min(cap(b), end)])
		b = b[:len(b)+m]
		if err != nil && len(b) < end {
			return b, false
		}
	}
	return b, true
}

// hasToken says whether the comma-separated values vv hold token, in
// any case (httpguts.HeaderValuesContainsToken, as ReverseProxy asks).
func hasToken(vv []string, token string) bool {
	for _, v := range vv {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.Trim(t, " \t"), token) {
				return true
			}
		}
	}
	return false
}

func appendHeader(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v...)
	return append(b, "\r\n"...)
}

// appendForwarded writes X-Forwarded-For/Proto/Host as setForwarded has
// ReverseProxy set them: the client's own only if it is a trusted proxy.
func (s *Server) appendForwarded(b []byte, r *http.Request) []byte {
	trusted := s.trusted(r.RemoteAddr)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		b = append(b, "X-Forwarded-For: "...)
		if prior := r.Header["X-Forwarded-For"]; trusted && len(prior) > 0 {
			for _, p := range prior {
				b = append(b, p...)
				b = append(b, ", "...)
			}
		}
		b = append(b, ip...)
		b = append(b, "\r\n"...)
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	host := r.Host
	if trusted {
		if v := r.Header.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
		if v := r.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
	}
	b = appendHeader(b, "X-Forwarded-Host", host)
	return appendHeader(b, "X-Forwarded-Proto", proto)
}
