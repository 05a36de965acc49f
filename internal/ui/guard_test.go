package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGuard: only a request on the loopback address that carries the
// token, or the cookie it set, reaches the dashboard.
func TestGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("dashboard")) })
	g := Guard("s3cret", "127.0.0.1:4242", ok)
	cookie := "moat-ui-4242=s3cret"
	tests := []struct {
		name, host, target, cookie string
		code                       int
		location                   string
	}{
		{"no token", "127.0.0.1:4242", "/", "", 403, ""},
		{"wrong token", "127.0.0.1:4242", "/?token=guess", "", 403, ""},
		{"two tokens", "127.0.0.1:4242", "/?token=s3cret&token=guess", "", 403, ""},
		{"token", "127.0.0.1:4242", "/apps/web?range=week&token=s3cret", "", 303, "/apps/web?range=week"},
		{"token on localhost", "localhost:4242", "/?token=s3cret", "", 303, "/"},
		{"token, path of another host", "127.0.0.1:4242", "//evil.example/?token=s3cret", "", 303, "/"},
		{"cookie", "127.0.0.1:4242", "/nodes/n1", cookie, 200, ""},
		{"wrong cookie", "127.0.0.1:4242", "/", "moat-ui-4242=guess", 403, ""},
		{"another port's cookie", "127.0.0.1:4242", "/", "moat-ui-4243=s3cret", 403, ""},
		{"rebound name", "evil.example:4242", "/", cookie, 403, ""},
		{"rebound name with token", "evil.example:4242", "/?token=s3cret", "", 403, ""},
		{"other port", "127.0.0.1:80", "/", cookie, 403, ""},
		{"the icon, no token", "127.0.0.1:4242", "/favicon.ico", "", 200, ""},
		{"the icon with a query", "127.0.0.1:4242", "/favicon.ico?x=1", "", 403, ""},
		{"the icon, rebound name", "evil.example:4242", "/favicon.ico", "", 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			r.Host = tt.host
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if loc := w.Header().Get("Location"); loc != tt.location {
				t.Errorf("Location %q, want %q", loc, tt.location)
			}
			if tt.code == 403 && w.Body.String() == "dashboard" {
				t.Errorf("refused, yet served")
			}
			if tt.code == 303 {
				c := w.Header().Get("Set-Cookie")
				for _, s := range []string{"moat-ui-4242=s3cret", "HttpOnly", "SameSite=Strict", "Path=/"} {
					if !strings.Contains(c, s) {
						t.Errorf("Set-Cookie %q lacks %s", c, s)
					}
				}
			}
		})
	}
	if a, b := NewToken(), NewToken(); a == b || len(a) < 40 {
		t.Errorf("tokens %q %q", a, b)
	}
}
