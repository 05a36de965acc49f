package edge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
	"unsafe"
)

// acked waits until the peer's kernel has acknowledged all c has sent,
// so that it is in the peer's receive queue (no sleep: SIOCOUTQ polled).
func acked(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		var n int32
		var errno syscall.Errno
		rc.Control(func(fd uintptr) {
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
		})
		return errno == 0 && n == 0
	})
}

// rawEdge is an edge routing r.test to addr, on either path.
func rawEdge(t *testing.T, addr string, noLean bool) string {
	t.Helper()
	bk := newBackends()
	bk.set("app", 80, addr)
	s, eaddr := startEdge(t, Config{Dial: bk.Dial})
	s.noLean = noLean
	if err := s.SetTable(Table{Routes: []Route{{Host: "r.test", App: "app", Port: 80}}}); err != nil {
		t.Fatal(err)
	}
	return eaddr
}

// send sends method to the edge for r.test and returns the status and
// body (status 0 if the answer was cut).
func send(t *testing.T, eaddr, method string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+eaddr+"/", nil)
	req.Host = "r.test"
	resp, err := client().Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, string(b)
	}
	return resp.StatusCode, string(b)
}

// TestStrayBytesAfterAnswer: an app that sends more than its answer
// (a body after a HEAD's head, here a whole forged answer) once that
// answer was read: the edge must not read those bytes as the next
// request's answer, however soon it comes. (Go's Transport closes a
// connection that says anything while idle, if its reading goroutine
// sees the bytes before the next request takes the connection: the
// ReverseProxy path passes this only most of the time, so only the lean
// path is held to it.)
func TestStrayBytesAfterAnswer(t *testing.T) {
	answered := make(chan struct{})
	strayed := make(chan struct{})
	addr, conns := rawApp(t, func(n int32, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if n > 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
		if req.Method != "HEAD" {
			return
		}
		select {
		case <-answered:
		case <-time.After(10 * time.Second):
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
		acked(t, c)
		close(strayed)
		http.ReadRequest(br) // the next request, if it comes here
	})
	eaddr := rawEdge(t, addr, false)
	if code, _ := send(t, eaddr, "HEAD"); code != 200 {
		t.Fatalf("HEAD: %d", code)
	}
	close(answered)
	select {
	case <-strayed:
	case <-time.After(10 * time.Second):
		t.Fatal("the app did not send its stray bytes")
	}
	if code, body := send(t, eaddr, "GET"); code != 200 || body != "fresh" {
		t.Errorf("GET after stray bytes: %d %q, want 200 \"fresh\" from a new connection (%d connections)", code, body, conns.Load())
	}
}

// TestAnswerWithBothLengths: an answer with both Transfer-Encoding and
// Content-Length is read as chunked (as the Transport reads it), but its
// sender may have meant the other; the connection is not used again, or
// what the app sends next by its Content-Length becomes the next client's
// answer (RFC 9112 §6.3: such a message ought to be handled as an error).
func TestAnswerWithBothLengths(t *testing.T) {
	forged := "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"
	addr, conns := rawApp(t, func(n int32, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		if n > 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 5+len(forged))
		// The rest of the body by its Content-Length comes late, after
		// the next request if the edge sends one here.
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, forged)
	})
	eaddr := rawEdge(t, addr, false)
	if code, body := send(t, eaddr, "GET"); code != 200 || body != "" {
		t.Fatalf("GET: %d %q, want 200 and the chunked body (empty)", code, body)
	}
	if code, body := send(t, eaddr, "GET"); code != 200 || body != "fresh" {
		t.Errorf("GET after an answer with both lengths: %d %q, want 200 \"fresh\" from a new connection (%d connections)", code, body, conns.Load())
	}
}

// TestRequestBodyHeldAsReceived: the lean path keeps a request's body
// (up to 64 KiB) to send it again; a client declaring 64 KiB and sending
// 10 bytes (then nothing, for as long as it likes: bodies have no
// deadline) must cost the edge about what it sent, not 64 KiB per
// connection.
func TestRequestBodyHeldAsReceived(t *testing.T) {
	s := &Server{}
	r := httptest.NewRequest("POST", "http://r.test/", io.MultiReader(strings.NewReader("0123456789"), iotest.ErrReader(io.ErrUnexpectedEOF)))
	r.ContentLength = maxReplayBody
	b, ok := s.appendRequest(nil, r)
	if ok {
		t.Fatal("a body cut short was read whole")
	}
	if cap(b) > 8<<10 {
		t.Errorf("10 bytes of a body declared 64 KiB took a %d-byte buffer", cap(b))
	}
	// A body that arrives whole is sent whole.
	body := strings.Repeat("x", maxReplayBody)
	r = httptest.NewRequest("POST", "http://r.test/", iotest.OneByteReader(strings.NewReader(body)))
	r.ContentLength = maxReplayBody
	b, ok = s.appendRequest(nil, r)
	if !ok || !strings.HasSuffix(string(b), "\r\n\r\n"+body) || !strings.Contains(string(b), "\r\nContent-Length: 65536\r\n") {
		t.Errorf("a 64 KiB body read a byte at a time: ok=%v, %d bytes written", ok, len(b))
	}
}

// TestOddHostNotSentAsIs: an HTTP/2 :authority is checked only for CR,
// LF and NUL, so r.Host may hold what no Host header may ("evil.test/"
// before a name that a wildcard route matches, a name in Unicode). Go's
// Transport sends a Unicode name as punycode and refuses the rest; the
// lean path must not hand apps a Host that builds links to elsewhere.
func TestOddHostNotSentAsIs(t *testing.T) {
	hosts := make(chan string, 10)
	addr, _ := rawApp(t, func(n int32, c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			hosts <- req.Host
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	bk := newBackends()
	bk.set("app", 80, addr)
	s, _ := startEdge(t, Config{Dial: bk.Dial})
	if err := s.SetTable(Table{Routes: []Route{{Host: "*.r.test", App: "app", Port: 80}}}); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"a.r.test":           "a.r.test",
		"evil.test/x.r.test": "", // refused
		"evil.test x.r.test": "",
		"bücher.r.test":      "xn--bcher-kva.r.test",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, r)
		got := ""
		select {
		case got = <-hosts:
		default: // the app is not asked when the answer came without it
		}
		if got != want {
			t.Errorf("request for %q (answered %d): the app got Host %q, want %q", host, rec.Code, got, want)
		}
	}
}

// TestTeTrailersPassed: "TE: trailers" (the client takes trailers; gRPC
// needs it) is passed on whatever the Connection header names (RFC 9110
// §10.1.4 has a sender of TE name it there), as a token, as ReverseProxy
// does; other TE values are not.
func TestTeTrailersPassed(t *testing.T) {
	for _, noLean := range []bool{false, true} {
		addr := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%q", r.Header.Values("Te"))
		}))
		eaddr := rawEdge(t, addr, noLean)
		for _, c := range []struct{ te, conn, want string }{
			{"trailers", "", `["trailers"]`},
			{"trailers", "TE", `["trailers"]`},
			{"gzip, Trailers", "te, close", `["trailers"]`},
			{"notrailers", "", `[]`},
			{"gzip", "", `[]`},
		} {
			req, _ := http.NewRequest("GET", "http://"+eaddr+"/", nil)
			req.Host = "r.test"
			req.Header.Set("Te", c.te)
			if c.conn != "" {
				req.Header.Set("Connection", c.conn)
			}
			resp, err := client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != c.want {
				t.Errorf("noLean=%v: TE %q, Connection %q: the app got Te %s, want %s", noLean, c.te, c.conn, b, c.want)
			}
		}
	}
}

// TestNoReplayAfterAnswerBytes: a request whose answer had begun (part
// of a head, an interim 103) when its connection broke is not sent
// again, whatever the connection says of its bytes (Undeliverable's
// claim is about what was written; an answer proves the app had the
// request): on both paths. Bodies of unknown length never are.
func TestNoReplayAfterAnswerBytes(t *testing.T) {
	var prefix atomic.Value
	broken, _ := rawApp(t, func(n int32, c net.Conn, br *bufio.Reader) {
		if req, err := http.ReadRequest(br); err == nil {
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, prefix.Load().(string))
		}
	})
	var served atomic.Int32
	good := serveBackend(t, echoBody(&served))
	var dials atomic.Int32
	dial := func(ctx context.Context, app string, port int) (net.Conn, error) {
		addr := good
		if dials.Add(1)%2 == 1 {
			addr = broken
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &undeliveredConn{Conn: c, undelivered: true}, nil
	}
	s, eaddr := startEdge(t, Config{Dial: dial})
	if err := s.SetTable(Table{Routes: []Route{{Host: "r.test", App: "app", Port: 80}}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"H", "HTTP/1.1 200 OK\r\nContent-Le", "HTTP/1.1 103 Early Hints\r\n\r\n"} {
		prefix.Store(p)
		for _, kind := range []string{"POST", "upgrade", "chunked"} {
			s.CloseIdleUpstreams()
			dials.Store(0)
			req, _ := http.NewRequest("POST", "http://"+eaddr+"/", strings.NewReader("hello"))
			switch kind {
			case "upgrade": // the ReverseProxy path
				req, _ = http.NewRequest("GET", "http://"+eaddr+"/", nil)
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "x-test")
			case "chunked":
				req.ContentLength = -1
				req.Body = io.NopCloser(strings.NewReader("hello"))
			}
			req.Host = "r.test"
			resp, err := client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway || served.Load() != 0 {
				t.Errorf("%s after the answer began with %q: %d, sent again %d times; want 502, not sent again", kind, p, resp.StatusCode, served.Load())
			}
			served.Store(0)
		}
	}
}

// TestBothLengths: how the raw head is looked at for an answer framed
// two ways: names in any case, only whole field names, and a head that
// goes on past the buffer reported as not seen whole.
func TestBothLengths(t *testing.T) {
	for _, c := range []struct {
		head        string
		both, whole bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, true},
		{"HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: chunked\r\ncontent-length: 5\r\n\r\n", true, true},
		{"HTTP/1.1 200 OK\nContent-Length: 5\nTransfer-Encoding: chunked\n\n", true, true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Content-Length: 5\r\n\r\n", false, true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: a\r\n Content-Length: 5\r\n\r\n", false, true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n", false, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: " + strings.Repeat("x", 8<<10) + "\r\nContent-Length: 5\r\n\r\n", false, false},
	} {
		br := bufio.NewReaderSize(strings.NewReader(c.head), 4<<10)
		br.Peek(1)
		both, whole := bothLengths(br)
		if both != c.both || whole != c.whole {
			t.Errorf("%.60q: both %v whole %v, want %v %v", c.head, both, whole, c.both, c.whole)
		}
	}
}
