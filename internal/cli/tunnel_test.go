package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/testcluster"
)

func TestParseTunnel(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		listen string
		want   tunnel
		err    string // a part of the usage error; "" for none
	}{
		{[]string{"web:8080"}, "127.0.0.1", tunnel{"web", 8080, "127.0.0.1:0"}, ""},
		{[]string{"web:8080", "0"}, "127.0.0.1", tunnel{"web", 8080, "127.0.0.1:0"}, ""},
		{[]string{"web:8080", "8000"}, "127.0.0.1", tunnel{"web", 8080, "127.0.0.1:8000"}, ""},
		{[]string{"db:5432", "65535"}, "localhost", tunnel{"db", 5432, "localhost:65535"}, ""},
		{[]string{"web:8080"}, "::1", tunnel{"web", 8080, "[::1]:0"}, ""},
		{[]string{"web:8080"}, "[::1]", tunnel{"web", 8080, "[::1]:0"}, ""},
		{[]string{"web:8080", "9000"}, "[::1]", tunnel{"web", 8080, "[::1]:9000"}, ""},
		{[]string{"web:8080"}, "[::1]:9000", tunnel{"web", 8080, "[::1]:9000"}, ""},
		{[]string{"web:8080"}, "0.0.0.0:9000", tunnel{"web", 8080, "0.0.0.0:9000"}, ""},
		{[]string{"web:8080"}, ":9000", tunnel{"web", 8080, ":9000"}, ""},
		{[]string{"web"}, "127.0.0.1", tunnel{}, "want APP:PORT"},
		{[]string{":8080"}, "127.0.0.1", tunnel{}, "want APP:PORT"},
		{[]string{"web:"}, "127.0.0.1", tunnel{}, "from 1 to 65535"},
		{[]string{"web:http"}, "127.0.0.1", tunnel{}, "from 1 to 65535"},
		{[]string{"web:0"}, "127.0.0.1", tunnel{}, "from 1 to 65535"},
		{[]string{"web:65536"}, "127.0.0.1", tunnel{}, "from 1 to 65535"},
		{[]string{"web:8080", "-1"}, "127.0.0.1", tunnel{}, "local port \"-1\""},
		{[]string{"web:8080", "70000"}, "127.0.0.1", tunnel{}, "from 0 to 65535"},
		{[]string{"web:8080", "x"}, "127.0.0.1", tunnel{}, "from 0 to 65535"},
		{[]string{"web:8080", "8000"}, "127.0.0.1:9000", tunnel{}, "give one"},
		{[]string{"web:8080"}, "127.0.0.1:x", tunnel{}, "from 0 to 65535"},
		{[]string{"web:8080"}, "", tunnel{}, "--listen is empty"},
		{[]string{"web:8080"}, "::1:x", tunnel{}, "want a host or HOST:PORT"},
		{[]string{"web:8080"}, "[::1", tunnel{}, "want a host or HOST:PORT"},
		{[]string{"web:8080"}, "::1]", tunnel{}, "want a host or HOST:PORT"},
		{[]string{"web:8080"}, "[[::1]]", tunnel{}, "want a host or HOST:PORT"},
		{[]string{}, "127.0.0.1", tunnel{}, "got 0 arguments"},
		{[]string{"a:1", "2", "3"}, "127.0.0.1", tunnel{}, "got 3 arguments"},
	} {
		got, err := parseTunnel(tc.args, tc.listen)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseTunnel(%q, --listen %q) = %+v, %v; want %+v", tc.args, tc.listen, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, new(usageError))):
			t.Errorf("parseTunnel(%q, --listen %q) = %+v, %v; want a usage error saying %q", tc.args, tc.listen, got, err, tc.err)
		}
	}
}

// TestServeTunnelHalfClose: a client that ends its input has that passed
// on as a half-close, still gets the whole answer, and the connection ends
// once both directions have; a dial that fails is logged and the tunnel
// goes on; cancelling ends the tunnel, its listener and open connections.
func TestServeTunnelHalfClose(t *testing.T) {
	// The far end: reads to EOF, then answers with what it read, as the
	// probe's sink does; or holds the connection open ("hold").
	far, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	go func() {
		for {
			c, err := far.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				b, _ := io.ReadAll(c)
				if string(b) == "hold" {
					return
				}
				fmt.Fprintf(c, "read %d: %s", len(b), b)
			}()
		}
	}()
	fail := make(chan bool, 1)
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		select {
		case <-fail:
			return nil, errors.New("replica web-1 on node n2: connection refused")
		default:
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", far.Addr().String())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs testcluster.LockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serveTunnel(ctx, ln, dial, slog.New(slog.NewTextHandler(&logs, nil))) }()

	open := func() *net.TCPConn {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c.(*net.TCPConn)
	}
	for i := range 3 {
		c := open()
		msg := strings.Repeat(fmt.Sprint(i), 100_000) // more than one buffer's worth
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		c.CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if want := fmt.Sprintf("read %d: %s", len(msg), msg); err != nil || string(got) != want {
			t.Fatalf("connection %d: %d bytes, %v; want the far end's whole answer after the half-close", i, len(got), err)
		}
	}

	fail <- true
	c := open()
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("a connection whose dial failed read %d bytes; want it closed", n)
	}
	c.Close()
	if !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("the failed dial was not logged: %q", logs.String())
	}
	c = open()
	io.WriteString(c, "after")
	c.CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "read 5: after" {
		t.Errorf("after a failed dial: %q, %v; want the tunnel still serving", got, err)
	}
	c.Close()

	// An open connection and the listener end with the tunnel.
	held := open()
	io.WriteString(held, "hold")
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serveTunnel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serveTunnel did not return after its context ended")
	}
	if _, err := held.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("an open connection after the tunnel ended: %v; want it closed", err)
	}
	held.Close()
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts after the tunnel ended")
	}
}
