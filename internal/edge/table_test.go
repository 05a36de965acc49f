package edge

import (
	"path"
	"strings"
	"testing"
)

func TestTableRefuses(t *testing.T) {
	ok := Route{Host: "a.test", App: "web", Port: 80}
	with := func(f func(*Route)) Route { r := ok; f(&r); return r }
	for name, tb := range map[string]Table{
		"empty host":         {Routes: []Route{with(func(r *Route) { r.Host = "" })}},
		"bad label":          {Routes: []Route{with(func(r *Route) { r.Host = "a_.-b.test" })}},
		"inner wildcard":     {Routes: []Route{with(func(r *Route) { r.Host = "a.*.test" })}},
		"host with port":     {Routes: []Route{with(func(r *Route) { r.Host = "a.test:80" })}},
		"relative path":      {Routes: []Route{with(func(r *Route) { r.Path = "api" })}},
		"unclean path":       {Routes: []Route{with(func(r *Route) { r.Path = "/a/../b" })}},
		"double slash":       {Routes: []Route{with(func(r *Route) { r.Path = "/a//" })}},
		"app name":           {Routes: []Route{with(func(r *Route) { r.App = "Web.1" })}},
		"port 0":             {Routes: []Route{with(func(r *Route) { r.Port = 0 })}},
		"port 65536":         {Routes: []Route{with(func(r *Route) { r.Port = 65536 })}},
		"proxy protocol 3":   {Routes: []Route{with(func(r *Route) { r.ProxyProtocol = 3 })}},
		"duplicate":          {Routes: []Route{ok, with(func(r *Route) { r.App = "other" })}},
		"duplicate by case":  {Routes: []Route{ok, with(func(r *Route) { r.Host = "A.TEST" })}},
		"duplicate by slash": {Routes: []Route{with(func(r *Route) { r.Path = "/a" }), with(func(r *Route) { r.Path = "/a/" })}},
		"tls any host":       {TLS: []TLSHost{{Host: "*", ACME: true}}},
		"tls acme wildcard":  {TLS: []TLSHost{{Host: "*.a.test", ACME: true}}},
		"tls both":           {TLS: []TLSHost{{Host: "a.test", ACME: true, CertFile: "x", KeyFile: "y"}}},
		"tls neither":        {TLS: []TLSHost{{Host: "a.test"}}},
		"tls twice":          {TLS: []TLSHost{{Host: "a.test", ACME: true}, {Host: "A.test", ACME: true}}},
		"tls missing file":   {TLS: []TLSHost{{Host: "a.test", CertFile: "/nonexistent", KeyFile: "/nonexistent"}}},
	} {
		if _, err := compile(tb); err == nil {
			t.Errorf("%s: compiled, want an error", name)
		}
	}
	s, err := New(Config{Dial: newBackends().Dial})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTable(Table{TLS: []TLSHost{{Host: "a.test", ACME: true}}}); err == nil {
		t.Error("ACME host on a server without ACME: no error")
	}
}

// FuzzMatch: for any host and path, a matched route's host pattern covers
// the host, its path prefix covers the cleaned path, and no route of a
// more specific host or longer prefix would also have matched.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"a.example.com", "/api/x"}, {"EXAMPLE.COM.", "/"}, {"x.y.deep.example.com:443", "/api/v2"}, {"[::1]:80", "//a/../api"}, {"", ""}} {
		f.Add(s[0], s[1])
	}
	tb, err := compile(Table{Routes: []Route{
		{Host: "example.com", App: "a", Port: 1},
		{Host: "example.com", Path: "/api", App: "b", Port: 1},
		{Host: "example.com", Path: "/api/v2/", App: "c", Port: 1},
		{Host: "*.example.com", Path: "/api", App: "d", Port: 1},
		{Host: "*.deep.example.com", App: "e", Port: 1},
		{Host: "*", Path: "/x", App: "f", Port: 1},
	}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, p string) {
		r := tb.match(host, p)
		if r == nil {
			return
		}
		h := canonicalHost(host)
		switch {
		case r.Host == "*":
		case strings.HasPrefix(r.Host, "*."):
			if !strings.HasSuffix(h, r.Host[1:]) {
				t.Fatalf("%q matched %q", h, r.Host)
			}
		case h != r.Host:
			t.Fatalf("%q matched %q", h, r.Host)
		}
		if p == "" {
			p = "/"
		}
		clean := path.Clean(p)
		if !pathUnder(clean, r.Path) {
			t.Fatalf("path %q (%q) matched prefix %q", p, clean, r.Path)
		}
		for _, o := range tb.hosts[r.Host].routes {
			if len(o.Path) > len(r.Path) && pathUnder(clean, o.Path) {
				t.Fatalf("path %q: %q chosen over the longer %q", clean, r.Path, o.Path)
			}
		}
	})
}
