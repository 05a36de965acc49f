package gate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/yamux"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/gate"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// linkNode is a node with replicas of two apps and a link key for db:5432
// pinned in root's authorized_keys, as a target node of the link
// web>db:5432 has it:
//
//	db-1  app db,  sink on 5432, declares 5432 and 8080
//	db-2  app db,  http on 8080, declares 8080 only
//	db-3  app db,  declares 5432, stopped
//	web-1 app web, sink on 5432, declares 5432
func linkNode(t testing.TB) (*testcluster.Cluster, *attacker) {
	t.Helper()
	c := testcluster.NewCluster(t, 1)
	c.Install("n1")
	importSigned(t, c, "probe:1")
	root := c.NodeAPI("n1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, s := range []struct {
		name, app string
		cmd       []string
		ports     []int
	}{
		{"db-1", "db", []string{"sink", ":5432"}, []int{5432, 8080}},
		{"db-2", "db", []string{"serve", ":8080"}, []int{8080}},
		{"db-3", "db", []string{"sink", ":5432"}, []int{5432}},
		{"web-1", "web", []string{"sink", ":5432"}, []int{5432}},
	} {
		spec := nodeapi.ContainerSpec{Name: s.name, Image: "probe:1", Cmd: s.cmd, Labels: map[string]string{gate.AppLabel: s.app}}
		for _, p := range s.ports {
			spec.Ports = append(spec.Ports, nodeapi.Port{Port: p})
		}
		if _, err := root.CreateContainer(ctx, spec, true); err != nil {
			t.Fatalf("create %s: %v", s.name, err)
		}
		waitLogged(t, root, s.name)
	}
	if _, err := root.StopContainer(ctx, "db-3", nil); err != nil {
		t.Fatal(err)
	}

	n, _ := c.Node("n1")
	keyPath := filepath.Join(t.TempDir(), "link_ed25519")
	key, err := sshkey.GenerateKey(keyPath, "link")
	if err != nil {
		t.Fatal(err)
	}
	id := nodeapi.LinkID("web", "db", 5432)
	line := nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, nodeapi.LinkGrant{ID: id, Target: "db", Port: 5432, Key: sshkey.AuthorizedKey(key.PublicKey())})
	f, err := os.OpenFile(filepath.Join(n.Dir, "root", ".ssh", "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(line + "\n")
	f.Close()
	a := newAttacker(t, c, "n1")
	a.key = keyPath
	return c, a
}

// waitLogged waits for a container's first log line: its server listens.
func waitLogged(t testing.TB, api *nodeapi.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var lines int
		api.Logs(ctx, name, nodeapi.LogOptions{Tail: -1}, func(nodeapi.LogEntry) error { lines++; return nil })
		if lines > 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s logged nothing in 30s", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLinkKeyOnlyMuxes: an attacker holding a link key and using plain
// OpenSSH gets nothing but the mux: no rpc, sftp, scp, dial, blob, shell,
// pty or forwarding, and the node's files and processes are as before.
func TestLinkKeyOnlyMuxes(t *testing.T) {
	c, a := linkNode(t)
	state, procs := c.NodeState("n1"), c.NodeProcesses("n1")
	n, _ := c.Node("n1")
	secrets := nodeSecrets(t, n.Dir)
	blob := "blob sha256:" + strings.Repeat("ab", 32)
	var seen []string
	for _, tt := range []struct {
		name string
		args []string
		says string
	}{
		{"login shell", nil, "interactive login refused: this key may only run: mux"},
		{"login shell with a tty", []string{"-tt"}, "PTY allocation request failed"},
		{"mux with a tty", []string{"-tt", "mux"}, "PTY allocation request failed"},
		{"a command", []string{"id"}, "command refused"},
		{"a shell command line", []string{"sh -c id"}, "command refused"},
		{"mux with more", []string{"mux; id"}, "command refused"},
		{"mux with an argument", []string{"mux db-1"}, "command refused"},
		{"the master's rpc", []string{"rpc"}, "role link may not use rpc: this key may only run: mux"},
		{"the master's sftp", []string{"sftp"}, "role link may not use sftp"},
		{"the master's dial", []string{"dial db-1:5432"}, "role link may not use dial"},
		{"the master's dial of another port", []string{"dial db-1:8080"}, "role link may not use dial"},
		{"the peer's blob", []string{blob}, "role link may not use blob"},
		{"legacy scp sink", []string{"scp -t /tmp"}, "command refused"},
		{"legacy scp source", []string{"scp -f /etc/shadow"}, "command refused"},
		// OpenSSH does not pass a subsystem's stderr on.
		{"the sftp subsystem", []string{"-s", "sftp"}, ""},
		{"another subsystem", []string{"-s", "netconf"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := a.ssh("GET / HTTP/1.0\r\n\r\n", tt.args...)
			seen = append(seen, out, errOut)
			if code == 0 || out != "" || !strings.Contains(errOut, tt.says) {
				t.Errorf("exit %d, stdout %q, stderr %q; want a refusal saying %q", code, out, errOut, tt.says)
			}
		})
	}
	t.Run("sftp", func(t *testing.T) {
		for _, cmd := range []string{"get /etc/shadow", "get /etc/moat/peer_ed25519", "ls /", "put /etc/hostname x"} {
			out, errOut, code := a.sftp(cmd)
			seen = append(seen, out, errOut)
			if code == 0 {
				t.Errorf("sftp %q: exit 0 (%q %q)", cmd, out, errOut)
			}
		}
	})
	t.Run("scp", func(t *testing.T) {
		dir := t.TempDir()
		small := filepath.Join(dir, "small")
		os.WriteFile(small, []byte("hello"), 0o600)
		for _, args := range [][]string{
			{small, "root@" + a.addr + ":/tmp/moat-link-pwned"},
			{"-O", small, "root@" + a.addr + ":/tmp/moat-link-pwned"},
			{"root@" + a.addr + ":/etc/shadow", filepath.Join(dir, "shadow")},
			{"-O", "root@" + a.addr + ":/etc/moat/peer_ed25519", filepath.Join(dir, "peer")},
		} {
			if _, errOut, code := a.run("", "scp", append(a.opts(), args...)...); code == 0 {
				t.Errorf("scp %v: exit 0 (%s)", args, errOut)
			}
		}
		if _, err := os.Stat(filepath.Join(n.Dir, "tmp", "moat-link-pwned")); err == nil {
			t.Error("scp wrote into the node's /tmp")
		}
		for _, f := range []string{"shadow", "peer"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				t.Errorf("scp fetched %s", f)
			}
		}
	})
	t.Run("forwarding", func(t *testing.T) {
		_, errOut, code := a.ssh("", "-N", "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:22")
		if code == 0 || !strings.Contains(errOut, "forwarding failed") {
			t.Errorf("ssh -R: exit %d, stderr %q; want forwarding refused", code, errOut)
		}
		for _, flag := range []string{"-L", "-D"} {
			port := freePort(t)
			spec := fmt.Sprintf("127.0.0.1:%d:127.0.0.1:22", port)
			if flag == "-D" {
				spec = fmt.Sprintf("127.0.0.1:%d", port)
			}
			cmd := exec.Command("ssh", append(a.opts(), "-N", flag, spec, "root@"+a.addr)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if throughForward(t, port, flag == "-D") {
				t.Errorf("ssh %s: reached the node's sshd through the forward", flag)
			}
			cmd.Process.Kill()
			cmd.Wait()
		}
	})

	for _, s := range seen {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("an answer holds a line of /etc/moat: %q", secret)
			}
		}
	}
	if diff := cmp.Diff(state, c.NodeState("n1")); diff != "" {
		t.Errorf("the node's own files changed (-before +after):\n%s", diff)
	}
	waitProcesses(t, c, procs)
	// The key's one command still works.
	mux := dialMux(t, a)
	linkRoundTrip(t, mux, "db-1", "after the attack")
}

// waitProcesses waits until the node runs what it ran before.
func waitProcesses(t *testing.T, c *testcluster.Cluster, procs []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := c.NodeProcesses("n1")
		if slices.Equal(now, procs) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes differ from before (-before +after):\n%s", cmp.Diff(procs, now))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialMux runs `ssh ... mux` with the link key and makes its session a
// yamux client, as a source node does.
func dialMux(t testing.TB, a *attacker) *yamux.Session {
	t.Helper()
	conn, err := testcluster.DialSSH(context.Background(), exec.Command("ssh", append(a.opts(), "root@"+a.addr, "mux")...))
	if err != nil {
		t.Fatal(err)
	}
	mux, err := yamux.Client(conn, gate.MuxConfig())
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	return mux
}

// linkOpen opens a stream to a container and reads the gate's answer.
func linkOpen(t testing.TB, mux *yamux.Session, line string) (*yamux.Stream, error) {
	t.Helper()
	s, err := mux.OpenStream()
	if err != nil {
		t.Fatalf("open a stream: %v", err)
	}
	s.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(s, line); err != nil {
		t.Fatalf("write the opening line: %v", err)
	}
	answer, err := nodeapi.ReadLinkLine(s)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("no answer: %w", err)
	}
	if err := nodeapi.LinkAnswer(answer); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// sinkRoundTrip sends payload to a probe sink through a stream, ends its
// input (a half-close the sink must see to answer), and reads the
// sink's count and the end of the stream.
func sinkRoundTrip(s *yamux.Stream, payload string) error {
	defer s.Close()
	if _, err := io.WriteString(s, payload); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	s.Close() // yamux's half-close
	got, err := io.ReadAll(s)
	if want := fmt.Sprintf("ok %d\n", len(payload)); err != nil || string(got) != want {
		return fmt.Errorf("the sink answered %q, %v; want %q and the end", got, err, want)
	}
	return nil
}

func linkRoundTrip(t *testing.T, mux *yamux.Session, container, payload string) {
	t.Helper()
	s, err := linkOpen(t, mux, container+"\n")
	if err != nil {
		t.Fatalf("%s: %v", container, err)
	}
	if err := sinkRoundTrip(s, payload); err != nil {
		t.Fatalf("%s: %v", container, err)
	}
}

// TestLinkMuxThroughSSH: over one `ssh ... mux` session, streams reach
// port 5432 of db's running replicas and nothing else; each refusal is an
// answer on its stream, and the session goes on serving.
func TestLinkMuxThroughSSH(t *testing.T) {
	c, a := linkNode(t)
	procs := c.NodeProcesses("n1")
	mux := dialMux(t, a)
	linkRoundTrip(t, mux, "db-1", "hello")
	linkRoundTrip(t, mux, "db-1", strings.Repeat("0123456789abcdef", 1<<18)) // 4 MiB

	for _, tt := range []struct{ name, line, says string }{
		{"another app's replica", "web-1\n", "no replica of db"},
		{"a container that does not exist", "nosuch\n", "no replica of db"},
		{"a replica of db not declaring the port", "db-2\n", "does not declare tcp port 5432"},
		{"a stopped replica of db", "db-3\n", "not running"},
		{"another declared port of a db replica", "db-1:8080\n", "not a container name"},
		{"a path", "../../../etc/moat/peer_ed25519\n", "not a container name"},
		{"garbage", "\x00\xff\x1b[2J GET / HTTP/1.1\n", "not a container name"},
		{"an overlong line", strings.Repeat("d", 100<<10) + "\n", "longer than 512 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := linkOpen(t, mux, tt.line)
			if err == nil {
				s.Close()
				t.Fatalf("connected; want refused")
			}
			if !errors.Is(err, errs.ErrUnavailable) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("%v; want an error answer saying %q", err, tt.says)
			}
			linkRoundTrip(t, mux, "db-1", "still up after "+tt.name)
		})
	}
	t.Run("50 streams at once", func(t *testing.T) {
		var wg sync.WaitGroup
		errc := make(chan error, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := linkOpen(t, mux, "db-1\n")
				if err == nil {
					err = sinkRoundTrip(s, strings.Repeat(fmt.Sprintf("stream %d;", i), 1000*(i+1)))
				}
				if err != nil {
					errc <- fmt.Errorf("stream %d: %w", i, err)
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
	})
	t.Run("bytes sent with the opening line", func(t *testing.T) {
		// A source node sends what its client has already written with
		// the opening line: the container gets those bytes, not the line.
		s, err := linkOpen(t, mux, "db-1\nearly ")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(s, "and late"); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got, err := io.ReadAll(s); string(got) != "ok 14\n" {
			t.Fatalf("the sink answered %q, %v; want ok 14", got, err)
		}
	})
	t.Run("a replica stopped, then started again", func(t *testing.T) {
		// The gate has db-1 cached by now: its stop must be seen at once,
		// and its new run (a new process) reached.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		root := c.NodeAPI("n1")
		if _, err := root.StopContainer(ctx, "db-1", nil); err != nil {
			t.Fatal(err)
		}
		if s, err := linkOpen(t, mux, "db-1\n"); err == nil || !strings.Contains(err.Error(), "not running") {
			if s != nil {
				s.Close()
			}
			t.Fatalf("db-1 stopped: %v; want not running", err)
		}
		if _, err := root.StartContainer(ctx, "db-1"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			s, err := linkOpen(t, mux, "db-1\n")
			if err == nil {
				err = sinkRoundTrip(s, "again")
			}
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("db-1 started again, not reached within 20s: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	// The session's end ends the gate: nothing it started stays.
	mux.Close()
	waitProcesses(t, c, procs)
}
