package edge

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// TestLeanPath: what the lean path (forward.go) passes on and what it
// drops, as ReverseProxy does: hop-by-hop headers both ways (and those
// Connection names), the body, the query as sent, HEAD, 1xx answers,
// trailers, and a cut answer cut for the client too. ReverseProxy's path
// is held to the same.
func TestLeanPath(t *testing.T) {
	for _, noLean := range []bool{false, true} {
		t.Run(fmt.Sprintf("noLean=%v", noLean), func(t *testing.T) { testLeanPath(t, noLean) })
	}
}

func testLeanPath(t *testing.T, noLean bool) {
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			var hdr []string
			for _, k := range []string{"Connection", "Keep-Alive", "X-Drop", "X-Keep", "Te", "Proxy-Authorization", "User-Agent", "Content-Length"} {
				hdr = append(hdr, fmt.Sprintf("%s=%q", k, r.Header.Values(k)))
			}
			w.Header().Set("Connection", "X-Secret")
			w.Header().Set("X-Secret", "internal")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("X-Answer", "yes")
			fmt.Fprintf(w, "%s %s?%s %q %s", r.Method, r.URL.Path, r.URL.RawQuery, b, strings.Join(hdr, " "))
		case "/hints":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "after hints")
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		case "/cut":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "short")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
	})
	bk := newBackends()
	bk.set("app", 80, serveBackend(t, backend))
	s, addr := startEdge(t, Config{Dial: bk.Dial})
	s.noLean = noLean
	if err := s.SetTable(Table{Routes: []Route{{Host: "l.test", App: "app", Port: 80}}}); err != nil {
		t.Fatal(err)
	}
	do := func(req *http.Request) (*http.Response, string, error) {
		t.Helper()
		req.Host = "l.test"
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}

	req, _ := http.NewRequest("POST", "http://"+addr+"/echo?a=%20b&c", strings.NewReader("payload"))
	req.Header.Set("Connection", "X-Drop")
	req.Header.Set("X-Drop", "1")
	req.Header.Set("X-Keep", "1")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Proxy-Authorization", "secret")
	resp, body, err := do(req)
	want := `POST /echo?a=%20b&c "payload" Connection=[] Keep-Alive=[] X-Drop=[] X-Keep=["1"] Te=["trailers"] Proxy-Authorization=[] User-Agent=["Go-http-client/1.1"] Content-Length=["7"]`
	if err != nil || body != want {
		t.Errorf("POST: %q (%v),\nwant %q", body, err, want)
	}
	if resp.Header.Get("X-Secret") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Answer") != "yes" {
		t.Errorf("answer's headers: %v, want hop-by-hop ones dropped", resp.Header)
	}

	req, _ = http.NewRequest("HEAD", "http://"+addr+"/echo", nil)
	if resp, body, err := do(req); err != nil || resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d %q %v", resp.StatusCode, body, err)
	}

	req, _ = http.NewRequest("GET", "http://"+addr+"/trailer", nil)
	if resp, body, err := do(req); err != nil || body != "body" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("trailer: %q %v, trailers %v", body, err, resp.Trailer)
	}

	// Cut: the client's answer is cut too (before or after its head).
	req, _ = http.NewRequest("GET", "http://"+addr+"/cut", nil)
	req.Host = "l.test"
	if resp, err := client().Do(req); err == nil {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("an answer the app cut reached the client whole: %d %q", resp.StatusCode, b)
		}
	}

	// 1xx answers, read off the wire (Go's client hides them).
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /hints HTTP/1.1\r\nHost: l.test\r\n\r\n")
	tp := textproto.NewReader(bufio.NewReader(conn))
	line, _ := tp.ReadLine()
	hdr, _ := tp.ReadMIMEHeader()
	if line != "HTTP/1.1 103 Early Hints" || hdr.Get("Link") != "</style.css>; rel=preload" {
		t.Errorf("early hints: %q %v", line, hdr)
	}
	line, _ = tp.ReadLine()
	hdr, _ = tp.ReadMIMEHeader()
	if line != "HTTP/1.1 200 OK" || hdr.Get("Link") != "" {
		t.Errorf("after early hints: %q %v", line, hdr)
	}
}

// TestClientGoneEndsUpstream: a client that leaves while the app has not
// answered (a long poll) ends the upstream exchange too, so the app sees
// its request cancelled rather than holding on, on either path.
func TestClientGoneEndsUpstream(t *testing.T) {
	for _, noLean := range []bool{false, true} {
		t.Run(fmt.Sprintf("noLean=%v", noLean), func(t *testing.T) {
			arrived, cancelled := make(chan struct{}, 1), make(chan struct{}, 1)
			bk := newBackends()
			bk.set("app", 80, serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				select {
				case <-r.Context().Done():
					cancelled <- struct{}{}
				case <-time.After(10 * time.Second):
				}
			})))
			s, addr := startEdge(t, Config{Dial: bk.Dial})
			s.noLean = noLean
			if err := s.SetTable(Table{Routes: []Route{{Host: "g.test", App: "app", Port: 80}}}); err != nil {
				t.Fatal(err)
			}
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, "GET /poll HTTP/1.1\r\nHost: g.test\r\n\r\n")
			select {
			case <-arrived:
			case <-time.After(8 * time.Second):
				t.Fatal("the request did not reach the app")
			}
			conn.Close()
			select {
			case <-cancelled:
			case <-time.After(8 * time.Second):
				t.Fatal("the app's request went on after the client left")
			}
		})
	}
}

// TestAnswerHeadBounded: an app that sends headers without end gets a 502
// for its client, not the edge's memory.
func TestAnswerHeadBounded(t *testing.T) {
	app, _ := rawApp(t, func(_ int32, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
		line := "X-Filler: " + strings.Repeat("x", 1000) + "\r\n"
		for range 3000 { // 3 MB of headers
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
		io.WriteString(c, "\r\nok")
	})
	bk := newBackends()
	bk.set("app", 80, app)
	s, addr := startEdge(t, Config{Dial: bk.Dial})
	if err := s.SetTable(Table{Routes: []Route{{Host: "h.test", App: "app", Port: 80}}}); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, addr, "h.test", "/"); code != http.StatusBadGateway {
		t.Errorf("an answer with 3 MB of headers: %d, want 502", code)
	}
}
