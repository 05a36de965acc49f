package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/remote"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// operator is a laptop: its own ssh config (host aliases, a port, a user,
// an identity, a bastion for ProxyJump), an ssh-agent holding the only
// copies of the keys, its own known_hosts, contexts file and
// connection-sharing directory.
type operator struct {
	t      testing.TB
	h      *testcluster.MasterHost
	env    []string
	known  string
	config string
}

// Machines of the test's cluster: n1 the master's host, n2 a node, n3 a
// bastion (a plain machine whose root the operator key reaches).
const bastion = "n3"

// masterPort is where the master's host takes ssh from the bastion (a
// port other than 22, so that the config's Port has to be honoured).
const masterPort = 2222

// newOperator makes the laptop of user u. The agent holds decoys' keys
// first, then u's and the cluster's operator key (the bastion's root);
// the private key files are removed, so the agent has the only copies.
// The config's IdentityFile (a public key) picks u's key from the agent:
// were it ignored, ssh would offer the first decoy's.
func newOperator(t testing.TB, h *testcluster.MasterHost, u *testcluster.User, decoys ...*testcluster.User) *operator {
	t.Helper()
	dir := t.TempDir()
	sock := startAgent(t, filepath.Join(dir, "agent.sock"))
	var keys []string
	for _, d := range decoys {
		keys = append(keys, d.KeyPath)
	}
	for _, key := range append(keys, u.KeyPath, h.OperatorKeyPath) {
		add := exec.Command("ssh-add", "-q", key)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add %s: %v\n%s", key, err, out)
		}
	}
	// Identities by their public halves only (the agent signs).
	userPub, opPub := filepath.Join(dir, "user.pub"), filepath.Join(dir, "operator.pub")
	os.WriteFile(userPub, []byte(sshkey.AuthorizedKey(u.Signer.PublicKey())+"\n"), 0o644)
	os.WriteFile(opPub, []byte(sshkey.AuthorizedKey(h.OperatorKey.PublicKey())+"\n"), 0o644)
	for _, k := range append(keys, u.KeyPath) {
		os.Remove(k)
		os.Remove(k + ".pub")
	}
	b, err := h.Node(bastion)
	if err != nil {
		t.Fatal(err)
	}
	o := &operator{t: t, h: h, known: filepath.Join(dir, "known_hosts"), config: filepath.Join(dir, "ssh_config")}
	o.setKnown(h.Addr+" "+sshkey.AuthorizedKey(h.HostKey(h.Name)),
		fmt.Sprintf("[%s]:%d %s", h.Addr, masterPort, sshkey.AuthorizedKey(h.HostKey(h.Name))))
	// moat-master: everything from the config. moat-via: only the way
	// there (contexts give the user and port).
	cfg := fmt.Sprintf(`Host moat-master
  HostName %[1]s
  Port %[2]d
  User moat
  ProxyJump moat-bastion
  IdentityFile %[3]s
  IdentitiesOnly yes
Host moat-via
  HostName %[1]s
  ProxyJump moat-bastion
  IdentityFile %[3]s
  IdentitiesOnly yes
Host moat-bastion
  HostName %[4]s
  User root
  IdentityFile %[5]s
  IdentitiesOnly yes
Host *
  UserKnownHostsFile %[6]s
  GlobalKnownHostsFile /dev/null
  ConnectTimeout 10
`, h.Addr, masterPort, userPub, b.Addr, opPub, o.known)
	if err := os.WriteFile(o.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runtime := filepath.Join(dir, "run")
	os.Mkdir(runtime, 0o700)
	o.env = append(os.Environ(), "SSH_AUTH_SOCK="+sock, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_RUNTIME_DIR="+runtime, "MOAT_SSH_COMMAND=ssh -F "+o.config,
		// Nothing local: a command that fell back to a socket would fail.
		"MOAT_MASTER_SOCKET="+filepath.Join(dir, "no-master.sock"), "MOAT_MASTER=", "MOAT_TENANT=")
	t.Cleanup(func() { o.exitShared() })
	return o
}

// in is the operator as seen from test t (a subtest's failures are its).
func (o *operator) in(t testing.TB) *operator {
	c := *o
	c.t = t
	return &c
}

// with is the operator with more environment (later values win).
func (o *operator) with(env ...string) *operator {
	c := *o
	c.env = append(slices.Clone(o.env), env...)
	return &c
}

// setKnown writes known_hosts: the bastion's key and the given lines.
func (o *operator) setKnown(lines ...string) {
	b, _ := o.h.Node(bastion)
	all := append([]string{b.Addr.String() + " " + b.HostKey}, lines...)
	if err := os.WriteFile(o.known, []byte(strings.Join(all, "\n")+"\n"), 0o600); err != nil {
		o.t.Fatal(err)
	}
}

// keepers are the sockets of the keepers of ready sessions.
func (o *operator) keepers() []string {
	var out []string
	for _, env := range o.env {
		if dir, ok := strings.CutPrefix(env, "XDG_RUNTIME_DIR="); ok {
			socks, _ := filepath.Glob(filepath.Join(dir, "moat-ssh", remote.KeeperPrefix+"*"))
			for _, s := range socks {
				if !strings.HasSuffix(s, ".lock") {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// exitShared ends the keepers of ready sessions and the shared SSH
// connections moat left up.
func (o *operator) exitShared() {
	for _, env := range o.env {
		if dir, ok := strings.CutPrefix(env, "XDG_RUNTIME_DIR="); ok {
			for _, s := range o.keepers() {
				remote.StopKeeper(s)
			}
			socks, _ := filepath.Glob(filepath.Join(dir, "moat-ssh", "*"))
			for _, s := range socks {
				if !strings.HasPrefix(filepath.Base(s), remote.KeeperPrefix) {
					cmd := exec.Command("ssh", "-F", o.config, "-o", "ControlPath="+s, "-O", "exit", "moat-master")
					cmd.WaitDelay = 5 * time.Second
					cmd.Run()
				}
			}
		}
	}
}

// command is the CLI on the laptop, killed if it outlives ctx.
func (o *operator) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, testcluster.Moat(o.t), args...)
	cmd.Env = o.env
	// ssh, moat's child, may hold the output pipes a little longer.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// moat runs the CLI on the laptop; a minute at most.
func (o *operator) moat(stdin io.Reader, args ...string) (string, string, int) {
	o.t.Helper()
	return o.moatWithin(time.Minute, stdin, args...)
}

func (o *operator) moatWithin(limit time.Duration, stdin io.Reader, args ...string) (string, string, int) {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := o.command(ctx, args...)
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		o.t.Fatalf("moat %v: still running after %v\n%s%s", args, limit, out.String(), errOut.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &ee):
		return out.String(), errOut.String(), ee.ExitCode()
	}
	o.t.Fatalf("moat %v: %v", args, err)
	return "", "", 0
}

func (o *operator) ok(args ...string) (string, string) {
	o.t.Helper()
	out, errOut, code := o.moat(nil, args...)
	if code != 0 {
		o.t.Fatalf("moat %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out, errOut
}

func startAgent(t testing.TB, sock string) string {
	t.Helper()
	for _, bin := range []string{"ssh-agent", "ssh-add"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: apt-get install openssh-client", bin)
		}
	}
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not start")
		}
	}
}

// onlyThroughBastion makes the master's host take ssh on masterPort from
// the bastion, and nowhere else from anyone: the laptop reaches it only
// with ProxyJump and the config's Port.
func onlyThroughBastion(t *testing.T, h *testcluster.MasterHost) {
	t.Helper()
	b, err := h.Node(bastion)
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range [][]string{
		{"-t", "nat", "-A", "PREROUTING", "-s", b.Addr.String(), "-p", "tcp", "--dport", strconv.Itoa(masterPort), "-j", "REDIRECT", "--to-ports", "22"},
		{"-A", "INPUT", "-p", "tcp", "--dport", "22", "-m", "conntrack", "!", "--ctorigdstport", strconv.Itoa(masterPort), "-j", "REJECT", "--reject-with", "tcp-reset"},
	} {
		if out, err := h.Run(append([]string{"iptables", "-w"}, rule...)...); err != nil {
			t.Skipf("iptables in the master host's namespace: %v\n%s", err, out)
		}
	}
}

// TestRemoteCLI: from an operator's machine, with the keys only in
// ssh-agent and ~/.ssh/config's host alias, port, user, identity and
// ProxyJump through a bastion (the only way to the master's host), every
// kind of command works against a remote master: lists, a deploy with
// progress, logs -f, dial, image build and import that send only what
// the master lacks, with progress, going on from an interrupted upload.
// An unknown or changed host key is refused, naming the fingerprints.
func TestRemoteCLI(t *testing.T) {
	start := time.Now()
	h := testcluster.NewMasterHost(t, 2)
	h.Enrol(h.Master, "n2")
	h.Master.ImportProbe(t, "probe:1")
	alice := h.AddUser("alice", "admin@*")
	bob := h.AddUser("bob", "viewer@default")
	onlyThroughBastion(t, h)
	o := newOperator(t, h, alice, bob)

	t.Run("contexts, MOAT_MASTER and the ssh config", func(t *testing.T) {
		o := o.in(t)
		o.ok("context", "add", "prod", "moat-master", "--tenant", "default")
		o.ok("context", "add", "explicit", fmt.Sprintf("moat@moat-via:%d", masterPort))
		o.ok("context", "use", "prod")
		if out, _ := o.ok("context", "ls"); !regexp.MustCompile(`\*\s+prod\s+moat-master\s+default`).MatchString(out) {
			t.Fatalf("context ls:\n%s", out)
		}
		// The config's IdentityFile picked alice's key, not the agent's
		// first (bob's).
		if out, _ := o.ok("whoami"); !regexp.MustCompile(`user:\s+alice`).MatchString(out) {
			t.Fatalf("whoami:\n%s", out)
		}
		if out, _ := o.ok("node", "ls"); !strings.Contains(out, "n2") {
			t.Fatalf("node ls:\n%s", out)
		}
		// The first command left a keeper holding a session ready.
		if keepers := o.keepers(); len(keepers) != 1 {
			t.Errorf("keepers: %v, want one", keepers)
		}
		if b, _ := os.ReadFile(filepath.Join(nodeDir(t, h, bastion), "sshd.log")); !strings.Contains(string(b), "Accepted publickey for root") {
			t.Fatalf("the bastion was not used:\n%s", b)
		}
		o.ok("context", "use", "local")
		if _, errOut, code := o.moat(nil, "apps"); code == 0 || !strings.Contains(errOut, "no-master.sock") {
			t.Fatalf("apps on the local socket: exit %d %s", code, errOut)
		}
		for _, m := range []string{"prod", "explicit", "moat-master"} {
			if out, _ := o.with("MOAT_MASTER=" + m).ok("whoami"); !strings.Contains(out, "alice") {
				t.Fatalf("MOAT_MASTER=%s whoami:\n%s", m, out)
			}
		}
		// Straight to the master's host, no bastion: refused.
		direct := "moat@" + h.Addr
		if _, errOut, code := o.with("MOAT_MASTER="+direct).moat(nil, "ps"); code == 0 || !strings.Contains(errOut, direct) {
			t.Fatalf("MOAT_MASTER=%s ps: exit %d %s", direct, code, errOut)
		}
		o.ok("context", "use", "prod")
	})

	t.Run("deploy with progress, ps, apps, logs -f, dial", func(t *testing.T) {
		o := o.in(t)
		spec := filepath.Join(t.TempDir(), "web.yaml")
		os.WriteFile(spec, []byte("name: web\nimage: probe:1\nreplicas: 1\nargs: [serve, \":8080\"]\nresources: {cpu: 100m, memory: 32Mi}\n"+
			"ports: [{name: http, port: 8080}]\nhealth: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}\nupdate: {deadline: 30s}\n"), 0o644)
		out, errOut := o.ok("deploy", "-f", spec)
		if !strings.Contains(out, "deployed web revision 1: 1/1 ready") || !strings.Contains(errOut, "web revision 1: 0/1 ready") {
			t.Fatalf("deploy: %s\n%s", out, errOut)
		}
		if out, _ := o.ok("ps", "web"); !regexp.MustCompile(`web-\S+\s+web\s+1\s+n2\s+ready`).MatchString(out) {
			t.Fatalf("ps:\n%s", out)
		}
		if out, _ := o.ok("apps"); !strings.Contains(out, "web") {
			t.Fatalf("apps:\n%s", out)
		}
		o.logsFollow(t, "web", "serving on :8080")
		out, errOut, code := o.moatWithin(20*time.Second, strings.NewReader("GET / HTTP/1.0\r\n\r\n"), "dial", "web:8080")
		if code != 0 || !strings.HasPrefix(out, "HTTP/1.0 200") {
			t.Fatalf("dial: exit %d\n%s\n%s", code, out, errOut)
		}
	})

	t.Run("image build sends only what the master lacks", func(t *testing.T) {
		o := o.in(t)
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		os.WriteFile(data, randomBytes(2<<20), 0o755)
		build := func(name string, more ...string) string {
			_, errOut := o.ok(append([]string{"image", "build", "--add", data + ":/data", "--entrypoint", "/data", "--name", name}, more...)...)
			return errOut
		}
		first := build("up:1")
		if !strings.Contains(first, "in 3 blobs") || sentBytes(t, first) < 2<<20 {
			t.Fatalf("first build: %q, want the layer, config and manifest sent", first)
		}
		// Same layer, another config: only the config and manifest go.
		second := build("up:2", "--env", "V=2")
		if !strings.Contains(second, "in 2 blobs") || sentBytes(t, second) > 16<<10 {
			t.Fatalf("second build: %q, want only the config and manifest sent", second)
		}
		if out, _ := o.ok("image", "ls"); !strings.Contains(out, "up:1") || !strings.Contains(out, "up:2") {
			t.Fatalf("image ls:\n%s", out)
		}
	})

	t.Run("an interrupted import goes on where it stopped, with progress", func(t *testing.T) {
		o := o.in(t)
		tar := randomImage(t, "big:1", 8<<20)
		_, blobs := blobsOf(t, tar)
		var total int64
		layer := blobs[0]
		for _, b := range blobs {
			total += b.Size
			if b.Size > layer.Size {
				layer = b
			}
		}
		// 2 MB/s out of the bastion: the upload takes seconds, time to
		// press Ctrl-C halfway.
		shape(t, h, bastion, "16mbit")
		pct := o.interruptImport(t, tar, 20)
		unshape(t, h, bastion)
		had := interruptedAt(t, h, string(layer.Digest))
		t.Logf("interrupted at %d%%; the master had %d of the layer's %d bytes", pct, had, layer.Size)
		if had == 0 || had >= layer.Size {
			t.Fatalf("the master has %d of %d bytes after the interruption", had, layer.Size)
		}
		// What the master lacks: the rest of the layer, and whichever
		// small blobs the first attempt had not sent whole.
		var digests []string
		sizes := map[string]int64{}
		for _, b := range blobs {
			digests = append(digests, string(b.Digest))
			sizes[string(b.Digest)] = b.Size
		}
		missing, err := h.Master.Client.MissingBlobs(context.Background(), digests)
		if err != nil {
			t.Fatal(err)
		}
		var lacking int64
		for _, m := range missing {
			lacking += sizes[m.Digest] - m.Offset
		}
		errOut := o.ttyImport(t, tar)
		if !strings.Contains(errOut, "upload to the master") {
			t.Errorf("no progress shown:\n%q", errOut)
		}
		if got := sentBytes(t, errOut); got != lacking {
			t.Errorf("sent %d bytes, want %d: what the master lacked of the archive's %d (it had %d of the layer)", got, lacking, total, had)
		}
		if out, _ := o.ok("image", "ls"); !strings.Contains(out, "big:1") {
			t.Fatalf("image ls:\n%s", out)
		}
		if _, errOut := o.ok("image", "import", tar); !strings.Contains(errOut, "(0 bytes) in 0 blobs") {
			t.Errorf("a second import: %q, want nothing sent", errOut)
		}
	})

	t.Run("keys only in the agent", func(t *testing.T) {
		o := o.in(t)
		o.exitShared()
		// No agent, no key: neither the bastion nor the master lets in.
		if _, errOut, code := o.with("SSH_AUTH_SOCK=").moat(nil, "ps"); code == 0 || !strings.Contains(errOut, "ssh moat-master") {
			t.Fatalf("ps without the agent: exit %d %s", code, errOut)
		}
		o.ok("ps")
	})

	t.Run("host keys", func(t *testing.T) {
		o := o.in(t)
		offered := ssh.FingerprintSHA256(h.HostKey(h.Name))
		other := h.HostKey(bastion)
		host := fmt.Sprintf("[%s]:%d", h.Addr, masterPort)
		for _, tt := range []struct {
			name  string
			known []string
			want  []string
		}{
			{"unknown", nil, []string{offered, "none: not in known_hosts",
				"accept it with:\n  ssh -o StrictHostKeyChecking=accept-new -n -F " + o.config + " moat-master true"}},
			{"changed", []string{host + " " + sshkey.AuthorizedKey(other)},
				[]string{"has CHANGED", offered, ssh.FingerprintSHA256(other) + " (" + o.known + ":2)",
					"accept it with:\n  ssh-keygen -f '" + o.known + "' -R '" + host + "' && ssh -o StrictHostKeyChecking=accept-new -n -F " + o.config + " moat-master true"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				o := o.in(t)
				o.exitShared() // a shared connection would not check again
				o.setKnown(tt.known...)
				before, _ := os.ReadFile(o.known)
				_, errOut, code := o.moat(nil, "ps")
				if code == 0 {
					t.Fatal("ps succeeded")
				}
				t.Logf("refused:\n%s", errOut)
				for _, s := range append(tt.want, host) {
					if !strings.Contains(errOut, s) {
						t.Errorf("stderr lacks %q:\n%s", s, errOut)
					}
				}
				if after, _ := os.ReadFile(o.known); !bytes.Equal(before, after) {
					t.Errorf("known_hosts changed:\n%s", after)
				}
				// A context's port goes into the command that accepts
				// the key.
				_, errOut, _ = o.with("MOAT_MASTER=explicit").moat(nil, "ps")
				if want := fmt.Sprintf(" -F %s -p %d moat@moat-via true", o.config, masterPort); !strings.Contains(errOut, want) {
					t.Errorf("MOAT_MASTER=explicit: stderr lacks %q:\n%s", want, errOut)
				}
			})
		}
	})
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

// logsFollow runs moat logs -f until a line containing want arrives,
// then stops it as an operator does, with Ctrl-C (SIGINT).
func (o *operator) logsFollow(t *testing.T, app, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := o.command(ctx, "logs", app, "-f")
	stdout, _ := cmd.StdoutPipe()
	var errOut testcluster.LockedBuffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	found := false
	sc := bufio.NewScanner(stdout)
	for !found && sc.Scan() {
		found = strings.Contains(sc.Text(), want)
	}
	if !found {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("logs -f ended without %q: %s", want, errOut.String())
	}
	// Still following: nothing ended the stream. Ctrl-C ends it.
	go func() { io.Copy(io.Discard, stdout); done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("logs -f ended by itself: %v %s", err, errOut.String())
	case <-time.After(300 * time.Millisecond):
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("logs -f still running 10 s after SIGINT")
	}
}

// interruptImport runs moat image import on a terminal and presses Ctrl-C
// once its progress bar passes atLeast percent; it returns the percentage
// shown then.
func (o *operator) interruptImport(t *testing.T, tar string, atLeast int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := o.command(ctx, "image", "import", tar)
	term := onTerminal(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	term.started()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	percent := regexp.MustCompile(`upload to the master\s+(\d+)%`)
	for {
		if m := percent.FindAllStringSubmatch(term.String(), -1); m != nil {
			if p, _ := strconv.Atoi(m[len(m)-1][1]); p >= atLeast {
				if p >= 90 {
					t.Fatalf("the upload went too fast to interrupt (%d%%)", p)
				}
				cmd.Process.Signal(os.Interrupt)
				select {
				case err := <-done:
					if err == nil {
						t.Fatalf("import succeeded despite Ctrl-C:\n%s", term.String())
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("import still running 10 s after Ctrl-C")
				}
				return p
			}
		}
		select {
		case err := <-done:
			t.Fatalf("import ended before %d%% (%v):\n%q", atLeast, err, term.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ttyImport runs moat image import to the end with stderr on a terminal
// and returns what it showed there.
func (o *operator) ttyImport(t *testing.T, tar string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := o.command(ctx, "image", "import", tar)
	term := onTerminal(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	term.started()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("import: %v\n%s", err, term.String())
	}
	return term.wait(t)
}

// terminal is a pseudo-terminal a command's stderr is on; what the
// command writes there is kept.
type terminal struct {
	master, slave *os.File
	out           testcluster.LockedBuffer
	done          chan struct{}
}

// onTerminal puts cmd's stderr on a new pseudo-terminal, 120 columns wide.
func onTerminal(t *testing.T, cmd *exec.Cmd) *terminal {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120})
	term := &terminal{master: m, slave: s, done: make(chan struct{})}
	cmd.Stderr = s
	go func() { io.Copy(&term.out, m); close(term.done) }()
	return term
}

// started closes this side's copy of the terminal, so that reading ends
// when the command's does.
func (term *terminal) started() { term.slave.Close() }

func (term *terminal) String() string { return term.out.String() }

// wait returns everything the command wrote, once it has closed the
// terminal.
func (term *terminal) wait(t *testing.T) string {
	select {
	case <-term.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal stayed open 10 s after the command ended")
	}
	return term.String()
}

// shape limits a machine's outgoing rate.
func shape(t *testing.T, h *testcluster.MasterHost, node, rate string) {
	t.Helper()
	if out, err := runOn(h, node, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate, "burst", "32kb", "latency", "50ms"); err != nil {
		t.Skipf("tc on %s: %v\n%s", node, err, out)
	}
	t.Cleanup(func() { unshape(t, h, node) })
}

func unshape(t *testing.T, h *testcluster.MasterHost, node string) {
	runOn(h, node, "tc", "qdisc", "del", "dev", "eth0", "root")
}

func runOn(h *testcluster.MasterHost, node string, args ...string) (string, error) {
	cmd, err := h.Command(node, args...)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// interruptedAt is how much of a blob the master has once the upload
// that was interrupted has ended there (its request failed), and what
// was in flight has arrived: the next attempt goes on from it.
func interruptedAt(t *testing.T, h *testcluster.MasterHost, digest string) int64 {
	t.Helper()
	// A body cut short in a chunk or before its length ("after N
	// bytes"), or one that ended cleanly too soon ("N of SIZE bytes").
	ended := regexp.MustCompile(`"request failed" method=PUT path=/v1/blobs/` + regexp.QuoteMeta(digest) + `.* (?:after (\d+) bytes|(\d+) of \d+ bytes arrived)`)
	deadline := time.Now().Add(30 * time.Second)
	for !ended.MatchString(h.Master.Log()) {
		if time.Now().After(deadline) {
			t.Fatalf("the master did not end the interrupted upload in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := ended.FindStringSubmatch(h.Master.Log())
	after, _ := strconv.ParseInt(m[1]+m[2], 10, 64)
	st, err := h.Master.Client.MissingBlobs(context.Background(), []string{digest})
	if err != nil || len(st) != 1 {
		t.Fatalf("missing blobs: %v %v", st, err)
	}
	if st[0].Offset != after {
		t.Fatalf("the master says it has %d bytes of the blob, its log %d", st[0].Offset, after)
	}
	return after
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// randomImage builds an image of size random bytes into a file.
func randomImage(t *testing.T, name string, size int) string {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "data"), randomBytes(size), 0o755)
	out := filepath.Join(dir, "image.tar")
	if _, errOut, code := moat(t, "image", "build", "-o", out, "--add", filepath.Join(dir, "data")+":/data", "--entrypoint", "/data", "--name", name); code != 0 {
		t.Fatalf("image build: %s", errOut)
	}
	return out
}

func blobsOf(t *testing.T, path string) (*image.Archive, []image.ArchiveBlob) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ar, err := image.OpenArchive(f, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ar.Close() })
	blobs, err := ar.Blobs()
	if err != nil {
		t.Fatal(err)
	}
	return ar, blobs
}

// sentBytes reads the upload summary's "sent ... (N bytes)".
func sentBytes(t *testing.T, stderr string) int64 {
	t.Helper()
	m := regexp.MustCompile(`sent [^(]*\((\d+) bytes\)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no upload summary in %q", stderr)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

func nodeDir(t *testing.T, h *testcluster.MasterHost, name string) string {
	n, err := h.Node(name)
	if err != nil {
		t.Fatal(err)
	}
	return n.Dir
}
