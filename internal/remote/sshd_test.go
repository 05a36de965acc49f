package remote

import (
	"bufio"
	"bytes"
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
)

// TestMain doubles as the master's forced command in these tests: with
// MOAT_REMOTE_TEST_SERVE set, the test binary serves HTTP on its stdin
// and stdout, as `moat api` does, and exits when the session ends.
func TestMain(m *testing.M) {
	if dir := os.Getenv("MOAT_REMOTE_TEST_SERVE"); dir != "" {
		serveStdio(dir)
		return
	}
	// A keeper would be this test binary: TestKeeper runs one in-process,
	// the others use none.
	executable = func() (string, error) { return "", errors.New("no moat binary in the remote package's tests") }
	os.Setenv(NoKeeperEnv, "0")
	os.Exit(m.Run())
}

func serveStdio(dir string) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"ok":true,"tenant":%q}`, r.Header.Get(TenantHeader))
	})
	// Who the session is: the forced command of the key it logged in with
	// says (as moat api's --user does).
	mux.HandleFunc("GET /v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"user":%q}`, os.Getenv("MOAT_REMOTE_TEST_USER"))
	})
	// A stream: one line at once, then nothing until the client goes; the
	// end is recorded where the test looks.
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "first")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		os.WriteFile(filepath.Join(dir, "stream-ended"), nil, 0o600)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		rw.Flush()
		io.Copy(conn, rw)
	})
	// The server gets one end of a pipe with deadlines (a hijack needs
	// them), relayed to stdin and stdout as moat api relays to a socket.
	srv, relay := net.Pipe()
	go func() { io.Copy(relay, os.Stdin); relay.Close() }()
	go io.Copy(os.Stdout, relay)
	l := &oneListener{conn: srv, done: make(chan struct{})}
	(&http.Server{Handler: mux}).Serve(l)
}

// oneListener hands out one connection, and ends when it closes.
type oneListener struct {
	conn   net.Conn
	once   sync.Once
	done   chan struct{}
	served bool
}

func (l *oneListener) Accept() (net.Conn, error) {
	if !l.served {
		l.served = true
		return &closeNotify{Conn: l.conn, l: l}, nil
	}
	<-l.done
	return nil, net.ErrClosed
}
func (l *oneListener) Close() error   { return nil }
func (l *oneListener) Addr() net.Addr { return sshAddr("stdio") }

type closeNotify struct {
	net.Conn
	l *oneListener
}

func (c *closeNotify) Close() error {
	c.l.once.Do(func() { close(c.l.done) })
	return c.Conn.Close()
}

// sshd is a real OpenSSH server on loopback, for the length of a test.
type sshd struct {
	Port    int
	HostKey string // the public host key, authorized_keys format
	Dir     string
	log     *bytes.Buffer
}

// startSSHD runs sshd on a free loopback port with a fresh host key,
// accepting the given authorized_keys lines for root.
func startSSHD(t *testing.T, authorized ...string) *sshd {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: sshd logs in as root")
	}
	for _, bin := range []string{"/usr/sbin/sshd", "ssh", "ssh-keygen", "ssh-agent", "ssh-add"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: apt-get install openssh-server openssh-client", bin)
		}
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "host_ed25519")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
	pub, _ := os.ReadFile(key + ".pub")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(strings.Join(authorized, "\n")+"\n"), 0o600)
	cfg := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile none\nStrictModes no\nUsePAM no\n"+
		"PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
		port, key, filepath.Join(dir, "authorized_keys"))
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	s := &sshd{Port: port, HostKey: strings.TrimSpace(string(pub)), Dir: dir, log: &bytes.Buffer{}}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd on %d:\n%s", port, s.log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd not listening: %v\n%s", err, s.log.String())
		}
	}
}

// agent runs ssh-agent holding a new key, whose file is then removed:
// the key is in the agent only. It returns the agent's socket and the
// public key.
func agent(t *testing.T) (sock, pub string) {
	t.Helper()
	dir := t.TempDir()
	sock = filepath.Join(dir, "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	key := filepath.Join(dir, "id")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "operator", "-f", key)
	b, _ := os.ReadFile(key + ".pub")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		add := exec.Command("ssh-add", "-q", key)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if err := add.Run(); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("ssh-add: %v", err)
		}
	}
	os.Remove(key)
	os.Remove(key + ".pub")
	return sock, strings.TrimSpace(string(b))
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// firstLine reads one line of a stream.
func firstLine(r io.Reader) (string, error) {
	return bufio.NewReader(r).ReadString('\n')
}
