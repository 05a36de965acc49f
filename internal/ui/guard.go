package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Any local user can reach a loopback port, so the dashboard's URL carries
// a random token, as Jupyter's does: the first request with ?token= sets
// a cookie (HttpOnly, SameSite=Strict) and is sent on to the same page
// without the token; every other request needs the cookie. The Host
// header must name the loopback address listened on: a page of another
// site whose name an attacker points at 127.0.0.1 (DNS rebinding) sends
// its own name and is refused.

// NewToken returns a random token for a dashboard's URL.
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Guard serves next to requests that carry token, on addr (the
// host:port listened on).
func Guard(token, addr string, next http.Handler) http.Handler {
	_, port, _ := net.SplitHostPort(addr)
	return &guard{token: []byte(token), hosts: allowedHosts(addr), cookie: "moat-ui-" + port, next: next}
}

type guard struct {
	token  []byte
	hosts  map[string]bool
	cookie string // per port: two dashboards on one host keep their own
	next   http.Handler
}

// allowedHosts are the names a browser on this machine sends for addr:
// the address itself, and localhost with its port.
func allowedHosts(addr string) map[string]bool {
	out := map[string]bool{addr: true}
	if _, port, err := net.SplitHostPort(addr); err == nil {
		out[net.JoinHostPort("localhost", port)] = true
	}
	return out
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hosts[r.Host] {
		refuse(w, "this dashboard answers only on its loopback address")
		return
	}
	// The icon is the binary's, the same for everyone: a browser asks for
	// it on its own, on the refusal page too, and need not see a 403.
	if r.URL.Path == "/favicon.ico" && r.URL.RawQuery == "" {
		g.next.ServeHTTP(w, r)
		return
	}
	if t, ok := r.URL.Query()["token"]; ok {
		if len(t) != 1 || !g.match(t[0]) {
			refuse(w, "wrong token: open the URL moat ui printed")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: g.cookie, Value: string(g.token), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		// Send the browser on without the token in its address bar and
		// history.
		u := url.URL{Path: localPath(r.URL.Path)}
		q := r.URL.Query()
		q.Del("token")
		u.RawQuery = q.Encode()
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	if c, err := r.Cookie(g.cookie); err != nil || !g.match(c.Value) {
		refuse(w, "no token: open the URL moat ui printed")
		return
	}
	g.next.ServeHTTP(w, r)
}

// localPath keeps a redirect on this site: a path a browser could read as
// another host's ("//evil", "/\\evil") becomes the overview.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

func (g *guard) match(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), g.token) == 1
}

func refuse(w http.ResponseWriter, why string) {
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.Error(w, why, http.StatusForbidden)
}
