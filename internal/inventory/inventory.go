// Package inventory keeps the enrolled nodes and the master's SSH key in a
// small directory (MOAT_MASTER_DIR, /var/lib/moat-master by default) until
// the master's own store takes them over.
package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshx"
)

// DefaultDir is where the master's state lives unless MOAT_MASTER_DIR says.
const DefaultDir = "/var/lib/moat-master"

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
}

// Access is how the operator's ssh reached the node.
type Access struct {
	Dest      string `json:"dest"` // USER@HOST or an ssh_config alias
	Port      int    `json:"port,omitempty"`
	Identity  string `json:"identity,omitempty"`
	Jump      string `json:"jump,omitempty"`
	SSHConfig string `json:"sshConfig,omitempty"`
}

// Store is the inventory directory.
type Store struct{ dir string }

// Open opens (creating) the inventory directory.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open inventory: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the inventory's directory.
func (s *Store) Dir() string { return s.dir }

// MasterKey loads the master's key, generating it on first use.
func (s *Store) MasterKey() (ssh.Signer, error) {
	return sshx.LoadOrGenerateKey(filepath.Join(s.dir, "master_ed25519"), "moat-master")
}

func (s *Store) path() string { return filepath.Join(s.dir, "nodes.json") }

// List returns the nodes, sorted by name.
func (s *Store) List() ([]Node, error) {
	b, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	var nodes []Node
	if err := json.Unmarshal(b, &nodes); err != nil {
		return nil, fmt.Errorf("read inventory %s: %w", s.path(), err)
	}
	return nodes, nil
}

// Get returns one node.
func (s *Store) Get(name string) (Node, error) {
	nodes, err := s.List()
	if err != nil {
		return Node{}, err
	}
	for _, n := range nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("node %q is not enrolled: %w", name, errs.ErrNotFound)
}

// Put adds or replaces a node.
func (s *Store) Put(n Node) error {
	return s.update(func(nodes []Node) []Node {
		nodes = slices.DeleteFunc(nodes, func(o Node) bool { return o.Name == n.Name })
		return append(nodes, n)
	})
}

// Delete removes a node.
func (s *Store) Delete(name string) error {
	return s.update(func(nodes []Node) []Node {
		return slices.DeleteFunc(nodes, func(o Node) bool { return o.Name == name })
	})
}

// update rewrites the file under a lock, so enrolments run at once (moat
// dev up enrols every node in parallel) do not lose each other's writes.
func (s *Store) update(f func([]Node) []Node) error {
	lock, err := os.OpenFile(filepath.Join(s.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	nodes, err := s.List()
	if err != nil {
		return err
	}
	nodes = f(nodes)
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.MarshalIndent(nodes, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.path())
}

// Target is how the master's pool reaches a node.
func (n Node) Target() (sshx.Target, error) {
	key, err := sshx.ParsePublicKey(n.HostKey)
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
