// Package inventory describes an enrolled node as the master keeps it: how
// the master reaches it, the host key pinned at enrolment and how the
// operator's own ssh reached it. It also reads the node list kept before
// the master had a database (nodes.json) so the master can import it.
package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
)

// DefaultDir is where the master's state lives unless MOAT_MASTER_DIR says.
const DefaultDir = "/var/lib/moat-master"

// LegacyFile is the node list kept before the master had a database.
const LegacyFile = "nodes.json"

// Node is an enrolled node: how the master reaches it, the host key pinned
// at enrolment, and how the operator reached it (to remove it again).
type Node struct {
	Name     string            `json:"name"`
	Addr     string            `json:"addr"` // host:port the master connects to
	User     string            `json:"user"`
	HostKey  string            `json:"hostKey"`
	Labels   map[string]string `json:"labels,omitempty"`
	Enrolled time.Time         `json:"enrolled"`
	Info     nodeapi.NodeInfo  `json:"info"`
	Operator Access            `json:"operator"`
	Tenant   string            `json:"tenant,omitempty"` // whose replicas it runs; "" is the default tenant
	Shared   bool              `json:"shared,omitempty"` // it runs every tenant's replicas
}

// Access is how the operator's ssh reached the node.
type Access struct {
	Dest      string `json:"dest"` // USER@HOST or an ssh_config alias
	Port      int    `json:"port,omitempty"`
	Identity  string `json:"identity,omitempty"`
	Jump      string `json:"jump,omitempty"`
	SSHConfig string `json:"sshConfig,omitempty"`
}

// Legacy reads nodes.json, where nodes enrolled before the master's
// database existed were kept, so Init can move them into the database.
// A directory without one has no legacy nodes.
func Legacy(dir string) ([]Node, error) {
	path := filepath.Join(dir, LegacyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	var nodes []Node
	if err := json.Unmarshal(b, &nodes); err != nil {
		return nil, fmt.Errorf("read inventory %s: %w", path, err)
	}
	return nodes, nil
}

// Target is how the master's pool reaches a node.
func (n Node) Target() (sshx.Target, error) {
	key, err := sshkey.ParsePublicKey(n.HostKey)
	if err != nil {
		return sshx.Target{}, fmt.Errorf("node %s: %w", n.Name, err)
	}
	return sshx.Target{Name: n.Name, Addr: n.Addr, User: n.User, HostKey: key}, nil
}

// Validate checks an Access before the operator's ssh is run with it. The
// master stores it, and a compromised master must not turn it into ssh
// options (a destination starting with '-') or a shell command: only a
// destination, a port, a jump host list and absolute paths pass.
func (a Access) Validate() error {
	if !sshWord(a.Dest, false) {
		return errs.Invalid("operator.dest", "%q: want USER@HOST or an ssh_config alias", a.Dest)
	}
	if a.Jump != "" && !sshWord(a.Jump, true) {
		return errs.Invalid("operator.jump", "%q: want [USER@]HOST[:PORT][,...]", a.Jump)
	}
	if a.Port < 0 || a.Port > 65535 {
		return errs.Invalid("operator.port", "%d: want 1 to 65535", a.Port)
	}
	for field, p := range map[string]string{"operator.identity": a.Identity, "operator.sshConfig": a.SSHConfig} {
		if p != "" && (!filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsAny(p, "\x00\n%")) {
			return errs.Invalid(field, "%q: want a clean absolute path", p)
		}
	}
	return nil
}

// sshWord: letters, digits and . _ - @ : [ ] (and , with list), not
// starting with '-', so ssh reads it as a destination, never an option.
func sshWord(s string, list bool) bool {
	if s == "" || len(s) > 255 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@:[]", r) || list && r == ','
		if !ok {
			return false
		}
	}
	return true
}

// Registration is the node as moat node add sends it to the master.
func (n Node) Registration() masterapi.NewNode {
	return masterapi.NewNode{Name: n.Name, Addr: n.Addr, User: n.User, HostKey: n.HostKey, Labels: n.Labels,
		Enrolled: n.Enrolled, Info: n.Info, Operator: masterapi.Access(n.Operator)}
}

// FromRegistration is a registered node as the master keeps it.
func FromRegistration(r masterapi.NewNode) Node {
	return Node{Name: r.Name, Addr: r.Addr, User: r.User, HostKey: r.HostKey, Labels: r.Labels,
		Enrolled: r.Enrolled, Info: r.Info, Operator: Access(r.Operator), Tenant: r.Tenant, Shared: r.Shared}
}

// SplitDest takes the port off USER@HOST:PORT (or USER@[V6]:PORT), which
// ssh itself does not read; an ssh_config alias or a bare IPv6 address
// passes through.
func SplitDest(arg string) (dest string, port int, err error) {
	user, host, hasUser := strings.Cut(arg, "@")
	if !hasUser {
		user, host = "", arg
	}
	if host == "" || (hasUser && user == "") {
		return "", 0, fmt.Errorf("%q: want USER@HOST[:PORT] or an ssh_config alias", arg)
	}
	withUser := func(h string) string {
		if hasUser {
			return user + "@" + h
		}
		return h
	}
	if strings.HasPrefix(host, "[") {
		h, p, err := net.SplitHostPort(host)
		if err != nil {
			h, ok := strings.CutSuffix(strings.TrimPrefix(host, "["), "]")
			if !ok {
				return "", 0, fmt.Errorf("%q: want USER@[ADDRESS]:PORT", arg)
			}
			return withUser(h), 0, nil
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("%q: port %q: want 1-65535", arg, p)
		}
		return withUser(h), n, nil
	}
	if strings.Count(host, ":") != 1 {
		return arg, 0, nil // no port, or a bare IPv6 address
	}
	h, p, _ := strings.Cut(host, ":")
	n, err := strconv.Atoi(p)
	if h == "" || err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%q: port %q: want 1-65535", arg, p)
	}
	return withUser(h), n, nil
}
