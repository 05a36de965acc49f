package testcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
)

// MasterHost is the master's host of a cluster: machine n1, a network
// namespace with its own sshd, where moat is installed in /usr/local/bin,
// `moat init --ssh` (the real code path) made the api user and the sshd
// drop-in, and `moat master` runs. Operators reach it as moat@Addr with
// their own keys (AddUser, SSH); the other machines (n2...) are nodes
// to enrol (Enrol(h.Master, "n2")).
//
// The host has a private /etc (a copy of this machine's, with the host's
// own /etc/ssh and /etc/moat mounted in it), so the api user useradd makes
// lives and dies with the test.
type MasterHost struct {
	*Cluster
	Name   string // "n1"
	Addr   string // its address; sshd listens on port 22
	Master *Master
	// KnownHosts is a known_hosts file naming the host's key.
	KnownHosts string
	// Dir is the host's directory on this machine (the master's state is
	// in Dir/var-lib-moat/master, its socket Dir/run-moat/master.sock).
	Dir string
}

// MasterHostName is the machine of a MasterHost's cluster the master
// runs on.
const MasterHostName = "n1"

// NewMasterHost makes a cluster of nodes+1 machines, sets up n1 as the
// master's host and starts the master there; args go to `moat master`.
// Everything goes when the test ends.
func NewMasterHost(t testing.TB, nodes int, args ...string) *MasterHost {
	t.Helper()
	c := NewCluster(t, nodes+1)
	n, err := c.Node(MasterHostName)
	if err != nil {
		t.Fatal(err)
	}
	h := &MasterHost{Cluster: c, Name: MasterHostName, Addr: n.Addr.String(), Dir: n.Dir}
	h.privateEtc()
	// moat as an operator installs it: root's, in /usr/local/bin (sshd
	// runs only root's programs for its lookups).
	bin, err := os.ReadFile(Moat(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "usr-local-bin", "moat"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// The master's state and socket, as the host sees them (inside) and
	// as this machine does (dir, socket).
	const inDir, inSocket = "/var/lib/moat/master", "/run/moat/master.sock"
	dir := filepath.Join(n.Dir, "var-lib-moat", "master")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"master_ed25519", "master_ed25519.pub", "peer_ed25519", "peer_ed25519.pub"} {
		src := filepath.Join(filepath.Dir(c.MasterKeyPath), f)
		if b, err := os.ReadFile(src); err == nil {
			os.WriteFile(filepath.Join(dir, f), b, 0o600)
		}
	}
	if out, err := h.Run(nodeapi.BinaryPath, "init", "--dir", inDir, "--ssh"); err != nil {
		t.Fatalf("moat init --ssh on the master host: %v\n%s", err, out)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(h.Addr+" "+n.HostKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.KnownHosts = kh
	m := &Master{t: t, Dir: dir, Socket: filepath.Join(n.Dir, "run-moat", "master.sock"), args: args, logs: &LockedBuffer{}}
	m.command = func(args ...string) *exec.Cmd {
		// The paths Master.Start gives, as the host sees them.
		for i, a := range args {
			switch a {
			case m.Dir:
				args[i] = inDir
			case m.Socket:
				args[i] = inSocket
			}
		}
		cmd, err := c.Command(h.Name, append([]string{nodeapi.BinaryPath}, args...)...)
		if err != nil {
			t.Fatalf("start the master on %s: %v", h.Name, err)
		}
		return cmd
	}
	m.Client = masterapi.UnixClient(m.Socket)
	stop := onInterrupt(func() { m.Kill9() })
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("master log:\n%s", tail(m.logs.String(), 150))
			if b, err := os.ReadFile(filepath.Join(n.Dir, "sshd.log")); err == nil {
				t.Logf("master host sshd log:\n%s", tail(string(b), 60))
			}
		}
		m.Kill9()
	})
	m.Start()
	h.Master = m
	WaitForSocket(t, filepath.Join(n.Dir, "tmp", "moat-api", "api.sock"))
	return h
}

// privateEtc gives the host its own /etc: a copy of this machine's
// (without its /etc/ssh), with the host's own /etc/ssh and /etc/moat
// mounted in it; and its own /run/moat-api, where the master's api socket
// is. The copy is in the host's /tmp, the only place both this machine
// and the host's mount namespace see.
func (h *MasterHost) privateEtc() {
	h.t.Helper()
	// sshd writes the session's SSH_USER_AUTH file in /tmp as the api
	// user: the host's /tmp is everyone's, as a machine's is.
	if err := os.Chmod(filepath.Join(h.Dir, "tmp"), 0o777|os.ModeSticky); err != nil {
		h.t.Fatal(err)
	}
	etc := filepath.Join(h.Dir, "tmp", "moat-etc")
	if err := os.MkdirAll(filepath.Join(etc, "ssh"), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", `cd /etc && tar --exclude=./ssh -cf - . | tar -xpf - -C "$1"`, "sh", etc).CombinedOutput(); err != nil {
		h.t.Fatalf("copy /etc: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(etc, "moat"), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(h.Dir, "tmp", "moat-api"), 0o755); err != nil {
		h.t.Fatal(err)
	}
	// The mount point on this machine is node-init's (local.privateDirs),
	// removed with the last local node.
	script := "mount --bind /etc/ssh /tmp/moat-etc/ssh && mount --bind /etc/moat /tmp/moat-etc/moat && " +
		"mount --rbind /tmp/moat-etc /etc && mount --bind /tmp/moat-api /run/moat-api"
	if out, err := h.Run("sh", "-c", script); err != nil {
		h.t.Fatalf("private /etc on %s: %v\n%s", h.Name, err, out)
	}
}

// Run runs a program on the master's host (its namespaces, as root) and
// returns its combined output.
func (h *MasterHost) Run(args ...string) (string, error) {
	cmd, err := h.Command(h.Name, args...)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// User is a user of the master with a fresh key.
type User struct {
	Name    string
	KeyPath string // private key; KeyPath+".pub" the public one
	Signer  ssh.Signer
}

// NewUserKey makes a fresh ed25519 key for name, not yet known to the
// master.
func (h *MasterHost) NewUserKey(name string) *User {
	h.t.Helper()
	path := filepath.Join(h.t.TempDir(), name+"_ed25519")
	s, err := sshkey.GenerateKey(path, name)
	if err != nil {
		h.t.Fatal(err)
	}
	return &User{Name: name, KeyPath: path, Signer: s}
}

// AddUser adds a user with a fresh key and the roles given (ROLE@TENANT,
// as moat user add --role takes them), as root on the master's socket.
func (h *MasterHost) AddUser(name string, roles ...string) *User {
	h.t.Helper()
	u := h.NewUserKey(name)
	req := masterapi.NewUser{Name: name, Keys: []string{sshkey.AuthorizedKey(u.Signer.PublicKey())}}
	for _, r := range roles {
		role, tenant, ok := strings.Cut(r, "@")
		if !ok {
			tenant = "default"
		}
		req.Roles = append(req.Roles, masterapi.Role{Role: role, Tenant: tenant})
	}
	if _, err := h.Master.Client.AddUser(context.Background(), req); err != nil {
		h.t.Fatalf("add user %s: %v", name, err)
	}
	return u
}

// SSHArgs are the arguments of an OpenSSH client command reaching the
// master's host as the api user with u's key (and no other: no agent,
// no config), the host key checked, followed by args.
func (h *MasterHost) SSHArgs(u *User, args ...string) []string {
	return append([]string{"-F", "/dev/null", "-i", u.KeyPath, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + h.KnownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "moat@" + h.Addr}, args...)
}

// SSH is `ssh ... moat@HOST args...` as u (see SSHArgs).
func (h *MasterHost) SSH(u *User, args ...string) *exec.Cmd {
	return exec.Command("ssh", h.SSHArgs(u, args...)...)
}

// HTTPClient is an HTTP client of the master whose every connection is
// `ssh moat@HOST api` as u: what a remote operator's requests travel on.
func (h *MasterHost) HTTPClient(u *User) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return DialSSH(ctx, exec.CommandContext(ctx, "ssh", h.SSHArgs(u, "api")...))
		},
		DisableKeepAlives: true,
	}}
}

// DialSSH starts cmd (an ssh client) and makes its stdin and stdout a
// connection; Close ends it. Its stderr is kept for errors. Deadlines
// are honoured (the pipes are the runtime's, pollable), so a client that
// sets one fails instead of waiting for ever on a session that does not
// end.
func DialSSH(ctx context.Context, cmd *exec.Cmd) (net.Conn, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// exec's pipes are os.Pipe's ends behind interfaces.
	w, ok := stdin.(*os.File)
	r, ok2 := stdout.(*os.File)
	if !ok || !ok2 {
		return nil, fmt.Errorf("ssh: exec pipes are %T and %T, not files", stdin, stdout)
	}
	c := &sshConn{cmd: cmd, w: w, rf: r, r: bufio.NewReader(r), stderr: &LockedBuffer{}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

type sshConn struct {
	cmd    *exec.Cmd
	w      *os.File
	rf     *os.File
	r      *bufio.Reader
	stderr *LockedBuffer
	once   sync.Once
}

func (c *sshConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF && n == 0 {
		if s := strings.TrimSpace(c.stderr.String()); s != "" {
			return 0, fmt.Errorf("ssh: %s: %w", s, io.EOF)
		}
	}
	return n, err
}
func (c *sshConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// CloseWrite ends the input: the remote end reads EOF.
func (c *sshConn) CloseWrite() error { return c.w.Close() }

func (c *sshConn) Close() error {
	c.once.Do(func() {
		c.w.Close()
		if c.cmd.Process != nil {
			c.cmd.Process.Kill()
		}
		c.cmd.Wait()
	})
	return nil
}
func (c *sshConn) LocalAddr() net.Addr  { return sshAddr{} }
func (c *sshConn) RemoteAddr() net.Addr { return sshAddr{} }
func (c *sshConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}
func (c *sshConn) SetReadDeadline(t time.Time) error  { return c.rf.SetReadDeadline(t) }
func (c *sshConn) SetWriteDeadline(t time.Time) error { return c.w.SetWriteDeadline(t) }

type sshAddr struct{}

func (sshAddr) Network() string { return "ssh" }
func (sshAddr) String() string  { return "ssh" }
