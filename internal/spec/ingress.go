package spec

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Ingress is a public way in: edge nodes route requests for Host whose
// path lies under Path to this app's Port, on ready replicas.
type Ingress struct {
	Host string `json:"host"` // a DNS name or *.name
	Path string `json:"path"` // a prefix on segment boundaries; default "/"
	Port int    `json:"port"` // a declared tcp port's number (names resolved)
	// TLS is TLSNone (plain HTTP), TLSACME (the edge gets and renews the
	// certificate from its ACME CA) or TLSFromSecret (the certificate and
	// key are the value of the app's secret TLSSecret). With TLS, the edge
	// redirects plain HTTP to HTTPS.
	TLS       string `json:"tls,omitempty"`
	TLSSecret string `json:"tlsSecret,omitempty"` // with TLSFromSecret: one of the app's secrets
	// ProxyProtocol, 1 or 2, starts each connection to a replica with a
	// PROXY protocol header of that version naming the client; 0: none.
	ProxyProtocol int `json:"proxyProtocol,omitempty"`
}

// TLS modes of an ingress route.
const (
	TLSNone       = "none"
	TLSACME       = "acme"
	TLSFromSecret = "secret" // written tls: {secret: NAME}
)

// MaxIngress bounds the routes of one app.
const MaxIngress = 64

var labelRE = lazyRE(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (p *parser) ingress(v *yaml.Node, path string) error {
	return p.items(v, path, func(i int, item *yaml.Node, path string) error {
		in := Ingress{Path: "/", TLS: TLSNone}
		var ref *portRef
		err := p.fields(item, path, []field{
			{"host", p.toStr(&in.Host)},
			{"path", p.toStr(&in.Path)},
			{"port", func(v *yaml.Node, path string) (err error) {
				ref = &portRef{}
				ref.name, ref.num, err = nameOrNumber(v, path)
				return err
			}},
			{"tls", p.tls(&in)},
			{"proxyProtocol", p.toInt(&in.ProxyProtocol)},
		})
		in.Host = strings.ToLower(in.Host)
		p.app.Ingress = append(p.app.Ingress, in)
		p.ingressPorts = append(p.ingressPorts, ref)
		return err
	})
}

// tls decodes a route's tls: a mode's name, or {secret: NAME}.
func (p *parser) tls(in *Ingress) setter {
	return func(v *yaml.Node, path string) error {
		if v.Kind != yaml.MappingNode {
			return p.toStr(&in.TLS)(v, path)
		}
		in.TLS = TLSFromSecret
		return p.fields(v, path, []field{{"secret", p.toStr(&in.TLSSecret)}})
	}
}

// resolveIngress turns port names into numbers; no port means the app's
// first tcp port.
func (p *parser) resolveIngress() *Error {
	for i, ref := range p.ingressPorts {
		field := fmt.Sprintf("ingress[%d].port", i)
		if ref != nil && ref.name == "" {
			p.app.Ingress[i].Port = ref.num
			continue
		}
		found := false
		for _, port := range p.app.Ports {
			if port.Protocol == ProtoTCP && (ref == nil || port.Name == ref.name) {
				p.app.Ingress[i].Port, found = port.Port, true
				break
			}
		}
		switch {
		case found:
		case ref == nil:
			return fieldErr(field, "no tcp port to route to: declare one under ports")
		default:
			return fieldErr(field, "no tcp port named %q under ports", ref.name)
		}
	}
	return nil
}

func (c *checker) ingress(a App) {
	if len(a.Ingress) > MaxIngress {
		c.add("ingress", "%d routes: at most %d", len(a.Ingress), MaxIngress)
	}
	seen := map[string]int{}
	certs := map[string]int{} // host → the first route giving it a certificate
	for i, in := range a.Ingress {
		field := fmt.Sprintf("ingress[%d]", i)
		if err := checkHost(in.Host); err != "" {
			c.add(field+".host", "%q: %s", in.Host, err)
		}
		if !strings.HasPrefix(in.Path, "/") || in.Path != "/" && path.Clean(in.Path) != strings.TrimSuffix(in.Path, "/") {
			c.add(field+".path", "%q: want a clean absolute path such as / or /api", in.Path)
		}
		declared := false
		for _, p := range a.Ports {
			declared = declared || p.Port == in.Port && p.Protocol == ProtoTCP
		}
		if !declared {
			c.add(field+".port", "%d is not a tcp port under ports", in.Port)
		}
		switch in.TLS {
		case TLSNone:
		case TLSACME:
			if strings.HasPrefix(in.Host, "*.") {
				c.add(field+".tls", "acme cannot issue for a wildcard (it needs DNS-01): name the hosts")
			}
		case TLSFromSecret:
			if !slices.ContainsFunc(a.Secrets, func(s Secret) bool { return s.Name == in.TLSSecret }) {
				c.add(field+".tls.secret", "%q is not one of the app's secrets: declare it under secrets", in.TLSSecret)
			}
		default:
			c.add(field+".tls", "%q: want none, acme or {secret: NAME}", in.TLS)
		}
		// One host, one certificate: the edge serves a name one way.
		if in.TLS != TLSNone {
			if j, ok := certs[in.Host]; ok && (a.Ingress[j].TLS != in.TLS || a.Ingress[j].TLSSecret != in.TLSSecret) {
				c.add(field+".tls", "%s gets its certificate another way in ingress[%d]: give both the same tls", in.Host, j)
			} else if !ok {
				certs[in.Host] = i
			}
		}
		if in.ProxyProtocol < 0 || in.ProxyProtocol > 2 {
			c.add(field+".proxyProtocol", "%d: want 0 (none), 1 or 2 (the PROXY protocol's version)", in.ProxyProtocol)
		}
		key := in.Host + " " + path.Clean(in.Path)
		if j, dup := seen[key]; dup {
			c.add(field, "%s%s is also ingress[%d]", in.Host, in.Path, j)
		}
		seen[key] = i
	}
}

// checkHost says what is wrong with a route's host, "" if nothing.
func checkHost(h string) string {
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(name) > 253 {
		return "want a DNS name such as example.com or *.example.com"
	}
	for _, l := range strings.Split(name, ".") {
		if !labelRE().MatchString(l) {
			return fmt.Sprintf("label %q: want lowercase letters, digits and '-'", l)
		}
	}
	return ""
}
