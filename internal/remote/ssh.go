// Package remote is how the command line reaches a master on another
// machine: the contexts file naming masters, and HTTP carried over the
// operator's own OpenSSH client (so ~/.ssh/config, ssh-agent, known_hosts
// and jump hosts apply), one ssh session per HTTP connection over a shared
// SSH connection, the first of a command's taken ready from a keeper
// (keeper.go). An unknown or changed host key is refused, naming both
// fingerprints.
package remote

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
)

// Command is the remote command the master's forced command serves: the
// session becomes one connection to the master's HTTP API.
const Command = "api"

// TenantHeader carries the context's tenant with every request.
const TenantHeader = "Moat-Tenant"

// Persist is how long an idle shared SSH connection stays up, so the
// next command costs one round trip instead of a handshake.
const Persist = 60 * time.Second

// Master is a master reached through ssh.
type Master struct {
	Access inventory.Access
	Tenant string
	// SSH is the ssh command line (default "ssh"; MOAT_SSH_COMMAND, e.g.
	// "ssh -F ~/.ssh/other_config").
	SSH []string
	// ControlDir holds the shared connections' sockets (0700).
	ControlDir string

	keeperOnce sync.Once
}

// NewMaster is the master at a context's destination, with the ssh
// command from MOAT_SSH_COMMAND and the control directory's default.
func NewMaster(c Context) (*Master, error) {
	a, err := c.Access()
	if err != nil {
		return nil, err
	}
	dir, err := ControlDir()
	if err != nil {
		return nil, err
	}
	ssh := strings.Fields(os.Getenv("MOAT_SSH_COMMAND"))
	if len(ssh) == 0 {
		ssh = []string{"ssh"}
	}
	return &Master{Access: a, Tenant: c.Tenant, SSH: ssh, ControlDir: dir}, nil
}

// ControlDir is a directory only this user may enter, for the shared
// connections' sockets: $XDG_RUNTIME_DIR/moat-ssh, else the user's cache
// directory. A directory that is a link, another user's, or open to
// others is refused: whoever can reach the socket rides the connection.
func ControlDir() (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		var err error
		if base, err = os.UserCacheDir(); err != nil {
			return "", fmt.Errorf("ssh control directory: %w", err)
		}
		base = filepath.Join(base, "moat")
	}
	dir := filepath.Join(base, "moat-ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("ssh control directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("ssh control directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm() != 0o700 {
		return "", fmt.Errorf("ssh control directory %s: want a directory of this user's with mode 0700 (got %v): %w", dir, fi.Mode(), errs.ErrInvalid)
	}
	return dir, nil
}

// args are the ssh options of every session: no tty, never a prompt, host
// keys only from known_hosts, and the shared connection.
func (m *Master) args() []string {
	a := append([]string{}, m.SSH[1:]...)
	a = append(a, "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
		"-o", "ControlMaster=auto", "-o", "ControlPath="+filepath.Join(m.ControlDir, "ssh-"+m.reachKey()),
		"-o", "ControlPersist="+strconv.Itoa(int(Persist/time.Second)))
	if m.Access.Port != 0 {
		a = append(a, "-p", strconv.Itoa(m.Access.Port))
	}
	return a
}

// Name is the master as the operator named it.
func (m *Master) Name() string {
	if m.Access.Port != 0 {
		return m.Access.Dest + ":" + strconv.Itoa(m.Access.Port)
	}
	return m.Access.Dest
}

// DialContext starts an ssh session running the master's API command;
// its stdin and stdout are the connection.
func (m *Master) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	if err := m.Access.Validate(); err != nil {
		return nil, err
	}
	if c, err := m.fromKeeper(); err == nil {
		return c, nil
	}
	args := append(m.args(), m.Access.Dest, Command)
	cmd := exec.Command(m.SSH[0], args...)
	return start(cmd, m)
}

// HTTP is an http.Client whose connections are ssh sessions to the
// master, each request carrying the tenant.
func (m *Master) HTTP() *http.Client {
	t := &http.Transport{
		DialContext:         m.DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		// The master's API is HTTP/1.1 on a byte stream.
		ForceAttemptHTTP2: false,
	}
	return &http.Client{Transport: tenantTransport{t, m.Tenant}}
}

// tenantTransport puts the tenant header on every request.
type tenantTransport struct {
	base   http.RoundTripper
	tenant string
}

func (t tenantTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.tenant == "" {
		return t.base.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.Header.Set(TenantHeader, t.tenant)
	return t.base.RoundTrip(req)
}

// Exit ends the shared connection, if one is up.
func (m *Master) Exit() error {
	args := append(m.args(), "-O", "exit", m.Access.Dest)
	return exec.Command(m.SSH[0], args...).Run()
}
