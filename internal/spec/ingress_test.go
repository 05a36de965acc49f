package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIngress(t *testing.T) {
	base := "name: web\nimage: web:1\nports: [{name: http, port: 8080}, {name: admin, port: 9090}, {name: dns, port: 53, protocol: udp}]\n"
	a, err := Parse([]byte(base+"ingress: [{host: Example.COM}, {host: example.com, path: /api, port: admin, tls: acme}, {host: '*.example.org', port: 8080}]\n"), "app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Ingress{
		{Host: "example.com", Path: "/", Port: 8080, TLS: TLSNone},
		{Host: "example.com", Path: "/api", Port: 9090, TLS: TLSACME},
		{Host: "*.example.org", Path: "/", Port: 8080, TLS: TLSNone},
	}
	if diff := cmp.Diff(want, a.Ingress); diff != "" {
		t.Fatalf("ingress (-want +got):\n%s", diff)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"ingress: [{path: /}]", `ingress[0].host: "": want a DNS name`},
		{"ingress: [{host: 'exa mple.com'}]", `ingress[0].host: "exa mple.com": label "exa mple"`},
		{"ingress: [{host: example.com, path: api}]", `ingress[0].path: "api": want a clean absolute path`},
		{"ingress: [{host: example.com, path: /a/../b}]", `ingress[0].path: "/a/../b"`},
		{"ingress: [{host: example.com, port: nosuch}]", `ingress[0].port: no tcp port named "nosuch"`},
		{"ingress: [{host: example.com, port: dns}]", `ingress[0].port: no tcp port named "dns"`},
		{"ingress: [{host: example.com, port: 7000}]", `ingress[0].port: 7000 is not a tcp port under ports`},
		{"ingress: [{host: example.com, tls: yes}]", `ingress[0].tls: "yes": want none, acme or {secret: NAME}`},
		{"ingress: [{host: example.com, tls: secret}]", `ingress[0].tls.secret: "" is not one of the app's secrets`},
		{"ingress: [{host: example.com, tls: {secret: cert}}]", `ingress[0].tls.secret: "cert" is not one of the app's secrets: declare it under secrets`},
		{"ingress: [{host: example.com, tls: {secret: 5}}]", `ingress[0].tls.secret: 5 (a number): want a string`},
		{"ingress: [{host: example.com, tls: {file: x}}]", `ingress[0].tls.file: unknown field: want one of secret`},
		{"ingress: [{host: example.com, tls: [acme]}]", `ingress[0].tls: a list: want a string`},
		{"secrets: [{name: a}, {name: b}]\ningress: [{host: example.com, tls: {secret: a}}, {host: example.com, path: /x, tls: {secret: b}}]",
			`ingress[1].tls: example.com gets its certificate another way in ingress[0]`},
		{"secrets: [{name: a}]\ningress: [{host: example.com, tls: acme}, {host: example.com, path: /x, tls: {secret: a}}]",
			`ingress[1].tls: example.com gets its certificate another way in ingress[0]`},
		{"ingress: [{host: '*.example.com', tls: acme}]", `ingress[0].tls: acme cannot issue for a wildcard`},
		{"ingress: [{host: example.com}, {host: example.com, path: /}]", `ingress[1]: example.com/ is also ingress[0]`},
		{"ingress: [{host: example.com, weight: 2}]", `ingress[0].weight: unknown field`},
		{"ingress: [{host: example.com, proxyProtocol: 3}]", `ingress[0].proxyProtocol: 3: want 0 (none), 1 or 2`},
	} {
		_, err := Parse([]byte(base+tc.yaml+"\n"), "app.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	// A certificate from a secret may be a wildcard's; routes of one host
	// share it, plain ones included.
	a, err = Parse([]byte(base+"secrets: [{name: tls, reload: signal}]\ningress: [{host: '*.example.com', tls: {secret: tls}}, {host: '*.example.com', path: /x, tls: {secret: tls}}, {host: '*.example.com', path: /y}]\n"), "app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want = []Ingress{
		{Host: "*.example.com", Path: "/", Port: 8080, TLS: TLSFromSecret, TLSSecret: "tls"},
		{Host: "*.example.com", Path: "/x", Port: 8080, TLS: TLSFromSecret, TLSSecret: "tls"},
		{Host: "*.example.com", Path: "/y", Port: 8080, TLS: TLSNone},
	}
	if diff := cmp.Diff(want, a.Ingress); diff != "" {
		t.Fatalf("ingress with a secret's certificate (-want +got):\n%s", diff)
	}
	if _, err := Parse([]byte("name: web\nimage: web:1\ningress: [{host: example.com}]\n"), "app.yaml"); err == nil || !strings.Contains(err.Error(), "ingress[0].port: no tcp port to route to") {
		t.Errorf("ingress without ports: %v", err)
	}
}

func TestDrain(t *testing.T) {
	base := "name: web\nimage: web:1\nports: [{name: http, port: 8080}]\n"
	for _, tc := range []struct {
		yaml string
		want time.Duration
	}{
		{"", 0},
		{"ingress: [{host: example.com}]", DefaultDrain},
		{"ingress: [{host: example.com}]\nupdate: {drain: 2s}", 2 * time.Second},
		{"ingress: [{host: example.com}]\nupdate: {drain: 0s}", 0},
		{"update: {drain: 5s}", 5 * time.Second},
	} {
		a, err := Parse([]byte(base+tc.yaml+"\n"), "app.yaml")
		if err != nil || a.Update.Drain != tc.want {
			t.Errorf("%q: drain %v, %v; want %v", tc.yaml, a.Update.Drain, err, tc.want)
		}
	}
	if _, err := Parse([]byte(base+"update: {drain: 2h}\n"), "app.yaml"); err == nil || !strings.Contains(err.Error(), "update.drain: 2h0m0s: want 0 to 1h0m0s") {
		t.Errorf("drain 2h: %v", err)
	}
}
