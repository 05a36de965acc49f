package master

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestWebhookRedirectNotFollowed: a notice goes to the URL a cluster
// admin gave, not wherever its server sends it on (a redirect to a
// service on the master's own loopback or network, which a webhook's
// owner could not reach otherwise): a redirect is a failed delivery, kept
// for a retry.
func TestWebhookRedirectNotFollowed(t *testing.T) {
	var inner atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner.Add(1) }))
	defer target.Close()
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/internal", code)
		}))
		err := post(context.Background(), hook.URL, []byte(`{"alert":"x"}`))
		hook.Close()
		if err == nil {
			t.Errorf("a webhook answering %d: delivered", code)
		}
	}
	if n := inner.Load(); n != 0 {
		t.Errorf("the redirects' target got %d requests; want none", n)
	}
}

// TestWebhookStatusPrintable: a webhook server's status line goes into
// the error moat alerts webhook ls prints on a terminal: what a terminal
// would act on (an escape sequence) is quoted.
func TestWebhookStatusPrintable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "HTTP/1.1 503 \x1b]0;owned\x07\x1b[2Jgone\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		}
	}()
	err = post(context.Background(), "http://"+ln.Addr().String()+"/", []byte(`{}`))
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\x07") {
		t.Errorf("post: %q; want an error without the escapes", err)
	}
}
