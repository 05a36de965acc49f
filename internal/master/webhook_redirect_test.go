package master

import (
	"context"
	"net/http"
	"net/http/httptest"
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
