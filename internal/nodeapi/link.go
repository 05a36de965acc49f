package nodeapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
)

// Links: a replica of app SOURCE reaches app TARGET's port PORT at
// 127.0.0.1:LOCAL inside its own network namespace. The node opens that
// listener (never the container); each connection goes to a ready replica
// of TARGET: straight into its network namespace when it runs on the same
// node, else over SSH to the target node's gate, logged in with the link's
// own key, which the target node pins to `moat gate --as link --to
// TARGET:PORT`: that key can open exactly that link and nothing else.
//
// The master sends each node its whole LinkTable (PUT /v1/links): the links
// of the apps running there, with the replicas each may reach, and the
// grants — link keys other nodes will log in with to reach replicas here.

// RoleLink is the role of a link key at the gate: `mux` and nothing else.
const RoleLink = "link"

// LinkTable is all a node serves of links, replaced whole on each PUT.
type LinkTable struct {
	Links  []Link      `json:"links,omitempty"`
	Grants []LinkGrant `json:"grants,omitempty"`
	// Ingress is what an edge node's proxy routes; only a node whose own
	// settings make it an edge (node.conf edge=true, written by the
	// operator at enrolment) serves it. Each route reaches its app through
	// the link EdgeSource → app:port in Links, which has no listener.
	Ingress []IngressRoute `json:"ingress,omitempty"`
}

// EdgeSource is the source of the links an edge node's proxy uses. No app
// can have this name (app names have no '_'), so no container gets their
// listener; their Local is 0.
const EdgeSource = "moat_edge"

// IngressRoute sends requests for Host under Path to an app's port.
type IngressRoute struct {
	Host string `json:"host"`           // exact name or *.suffix
	Path string `json:"path,omitempty"` // prefix on segment boundaries; "" is "/"
	App  string `json:"app"`            // app key
	Port int    `json:"port"`
	Link string `json:"link"` // LinkID(EdgeSource, App, Port)
	// ACME: the edge obtains and renews Host's certificate from its ACME
	// CA and serves Host over TLS.
	ACME bool `json:"acme,omitempty"`
	// Cert: the edge serves Host over TLS with the certificate held as
	// one of the app's secrets (ingress_cert.go).
	Cert *IngressCert `json:"cert,omitempty"`
	// ProxyProtocol, 1 or 2: each connection to a replica starts with a
	// PROXY protocol header of that version naming the client.
	ProxyProtocol int `json:"proxyProtocol,omitempty"`
}

// Link is one link whose source app has replicas (or may get them) on the
// node receiving the table.
type Link struct {
	ID     string `json:"id"`     // LinkID(Source, Target, Port)
	Source string `json:"source"` // app key: containers labelled moat.app=Source get the listener
	Local  int    `json:"local"`  // 127.0.0.1:Local inside each source replica
	Target string `json:"target"` // app key of the replicas reached
	Port   int    `json:"port"`   // a tcp port the target declares
	// Key is the link's private key (OpenSSH PEM) for reaching replicas on
	// other nodes. Empty when every endpoint is on this node.
	Key       string         `json:"key,omitempty"`
	Endpoints []LinkEndpoint `json:"endpoints,omitempty"` // ready replicas of Target, in no order
}

// LinkEndpoint is one ready replica of a link's target.
type LinkEndpoint struct {
	Container string `json:"container"` // its name on its node
	Node      string `json:"node"`      // its node's name
	// Addr, User and HostKey reach the node's sshd; all empty when the
	// replica runs on the node receiving the table.
	Addr    string `json:"addr,omitempty"`
	User    string `json:"user,omitempty"`
	HostKey string `json:"hostKey,omitempty"` // authorized_keys form
}

// LinkGrant is a link key other nodes log in with to reach this node's
// replicas of Target on Port. The node pins it in root's authorized_keys
// with AuthorizedLinkLine, and removes the line when the grant goes.
type LinkGrant struct {
	ID     string `json:"id"`
	Target string `json:"target"`
	Port   int    `json:"port"`
	Key    string `json:"key"` // public key, authorized_keys form
}

// LinkID names a link: SOURCE>TARGET:PORT (app keys).
func LinkID(source, target string, port int) string {
	return fmt.Sprintf("%s>%s:%d", source, target, port)
}

// LinkComment marks a link key's authorized_keys line.
func LinkComment(id string) string { return "moat-link:" + id }

// AuthorizedLinkLine pins a link key to the gate's link role for one
// target app and port. App keys are names (ValidName: no quote, space or
// shell character), so the forced command needs no quoting.
func AuthorizedLinkLine(binary string, g LinkGrant) string {
	return fmt.Sprintf(`restrict,command="%s gate --as %s --to %s:%d" %s %s`, binary, RoleLink, g.Target, g.Port, strings.TrimSpace(g.Key), LinkComment(g.ID))
}

// Validate checks a table the master sent.
func (t *LinkTable) Validate() error {
	ids := map[string]bool{}
	for i, l := range t.Links {
		at := fmt.Sprintf("links[%d]", i)
		if err := checkLinkApps(at, l.Source, l.Target, l.Port); err != nil {
			return err
		}
		if l.ID != LinkID(l.Source, l.Target, l.Port) {
			return errs.Invalid(at+".id", "%q: want %q", l.ID, LinkID(l.Source, l.Target, l.Port))
		}
		if ids[l.ID] {
			return errs.Invalid(at+".id", "%q twice", l.ID)
		}
		ids[l.ID] = true
		switch {
		case l.Source == EdgeSource && l.Local != 0:
			return errs.Invalid(at+".local", "%d: the edge's links have no listener: want 0", l.Local)
		case l.Source != EdgeSource && (l.Local < 1 || l.Local > 65535):
			return errs.Invalid(at+".local", "%d: want a port 1-65535", l.Local)
		}
		for j, e := range l.Endpoints {
			eat := fmt.Sprintf("%s.endpoints[%d]", at, j)
			if !ValidName(e.Container) {
				return errs.Invalid(eat+".container", "%q is not a container name", e.Container)
			}
			if (e.Addr == "") != (e.HostKey == "") {
				return errs.Invalid(eat, "addr and hostKey go together")
			}
			if e.Addr != "" && l.Key == "" {
				return errs.Invalid(at+".key", "required: endpoint %s is on node %s", e.Container, e.Node)
			}
		}
	}
	for i, r := range t.Ingress {
		at := fmt.Sprintf("ingress[%d]", i)
		if r.Host == "" || len(r.Host) > 253 || strings.ContainsAny(r.Host, " \t\r\n/\"") {
			return errs.Invalid(at+".host", "%q is not a host name", r.Host)
		}
		if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
			return errs.Invalid(at+".path", "%q: want an absolute path", r.Path)
		}
		if r.Link != LinkID(EdgeSource, r.App, r.Port) || !ids[r.Link] {
			return errs.Invalid(at+".link", "%q: want the link %s in links", r.Link, LinkID(EdgeSource, r.App, r.Port))
		}
		if r.ProxyProtocol < 0 || r.ProxyProtocol > 2 {
			return errs.Invalid(at+".proxyProtocol", "%d: want 0, 1 or 2", r.ProxyProtocol)
		}
		if err := r.Cert.validate(at+".cert", r.ACME); err != nil {
			return err
		}
	}
	grants := map[string]bool{}
	for i, g := range t.Grants {
		at := fmt.Sprintf("grants[%d]", i)
		if g.ID == "" || strings.ContainsAny(g.ID, " \t\r\n\"") {
			return errs.Invalid(at+".id", "%q", g.ID)
		}
		if grants[g.ID] {
			return errs.Invalid(at+".id", "%q twice", g.ID)
		}
		grants[g.ID] = true
		if !ValidName(g.Target) {
			return errs.Invalid(at+".target", "%q is not an app", g.Target)
		}
		if g.Port < 1 || g.Port > 65535 {
			return errs.Invalid(at+".port", "%d: want a port 1-65535", g.Port)
		}
		f := strings.Fields(g.Key)
		if len(f) != 2 || strings.ContainsAny(g.Key, "\"\r\n") {
			return errs.Invalid(at+".key", "want TYPE BASE64, one public key")
		}
	}
	return nil
}

func checkLinkApps(at, source, target string, port int) error {
	if !ValidName(source) {
		return errs.Invalid(at+".source", "%q is not an app", source)
	}
	if !ValidName(target) {
		return errs.Invalid(at+".target", "%q is not an app", target)
	}
	if port < 1 || port > 65535 {
		return errs.Invalid(at+".port", "%d: want a port 1-65535", port)
	}
	return nil
}

// The link role's one command is `mux`: the session then carries a yamux
// session (github.com/hashicorp/yamux; the source node is the yamux
// client). Each stream opens with one line naming the container,
// "CONTAINER\n"; the gate answers one line, "ok\n" once it is connected to
// the container's port, else "error: WHY\n" and closes the stream. After
// "ok" the stream is the TCP connection, both ways, half-close included.
const LinkMux = "mux"

// MaxLinkLine bounds a stream's opening and answer lines.
const MaxLinkLine = 512

// WriteLinkOpen writes a stream's opening line.
func WriteLinkOpen(w io.Writer, container string) error {
	_, err := io.WriteString(w, container+"\n")
	return err
}

// ReadLinkLine reads one line of at most MaxLinkLine bytes, byte by byte,
// so nothing after it is consumed: the rest of the stream is the
// connection's.
func ReadLinkLine(r io.Reader) (string, error) {
	var b strings.Builder
	one := make([]byte, 1)
	for b.Len() <= MaxLinkLine {
		if _, err := io.ReadFull(r, one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return b.String(), nil
		}
		b.WriteByte(one[0])
	}
	return "", fmt.Errorf("line longer than %d bytes: %w", MaxLinkLine, errs.ErrInvalid)
}

// LinkAnswer turns the gate's answer line into an error, nil for "ok".
func LinkAnswer(line string) error {
	if line == "ok" {
		return nil
	}
	if why, ok := strings.CutPrefix(line, "error: "); ok {
		return fmt.Errorf("%s: %w", why, errs.ErrUnavailable)
	}
	return fmt.Errorf("unexpected answer %q: %w", line, errs.ErrInvalid)
}

// SetLinks replaces the node's link table.
func (c *Client) SetLinks(ctx context.Context, t LinkTable) error {
	return c.Call(ctx, http.MethodPut, "/v1/links", t, nil)
}

// Links is the node's link table and what it serves of it.
func (c *Client) Links(ctx context.Context) (LinkStatus, error) {
	var out LinkStatus
	return out, c.Call(ctx, http.MethodGet, "/v1/links", nil, &out)
}

// LinkStatus is what GET /v1/links answers: the table (private keys
// left out) and, per link, the listeners open and connections held.
type LinkStatus struct {
	Table     LinkTable      `json:"table"`
	Listeners []LinkListener `json:"listeners,omitempty"`
}

// LinkListener is one link's listener inside one source container.
type LinkListener struct {
	Link      string `json:"link"`
	Container string `json:"container"`
	Local     int    `json:"local"`
	Open      int    `json:"open"`     // connections held now
	Accepted  int64  `json:"accepted"` // since the listener opened
	Failed    int64  `json:"failed"`   // connections no endpoint took
}
