package masterhost_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
	"github.com/moatcloud/moat/internal/wire"
)

// TestOperatorsOverSSH: operators' keys and certificates reach the
// master's API through the master host's real sshd and moat api, as
// themselves and no one else; nothing else on the host is reachable with
// them; revoking a user, a key or a CA ends their open sessions within 5s,
// and a certificate's session ends when it expires. One master host serves
// every subtest.
func TestOperatorsOverSSH(t *testing.T) {
	h := testcluster.NewMasterHost(t, 1)
	h.Enrol(h.Master, "n2")
	h.Master.ImportProbe(t, "probe:1")
	ctx := context.Background()
	alice := h.AddUser("alice", "admin@*")
	ac := remote(h, alice)

	t.Run("ping and whoami as alice", func(t *testing.T) {
		if err := ac.Ping(ctx); err != nil {
			t.Fatalf("ping over ssh: %v", err)
		}
		w, err := whoami(ac)
		if err != nil {
			t.Fatal(err)
		}
		fp := sshFingerprint(alice)
		if w.User != "alice" || w.Local || w.Credential != fp || w.Tenant != "default" {
			t.Fatalf("whoami: %+v, want alice with %s in default", w, fp)
		}
	})

	t.Run("deploy, watch and dial as alice", func(t *testing.T) { deployWatchDial(t, h, ac) })
	t.Run("the client cannot forge who it is", func(t *testing.T) { cannotForge(t, h, alice, ac) })

	t.Run("unknown key refused", func(t *testing.T) {
		mallory := h.NewUserKey("mallory")
		out, err := h.SSH(mallory, "api").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Fatalf("an unknown key: %v\n%s", err, out)
		}
	})

	t.Run("nothing but the api", func(t *testing.T) { nothingButTheAPI(t, h, alice) })
	t.Run("certificates", func(t *testing.T) { certificates(t, h) })
	t.Run("revocation ends sessions within 5s", func(t *testing.T) { revocation(t, h) })
}

func deployWatchDial(t *testing.T, h *testcluster.MasterHost, ac *masterapi.Client) {
	ctx := context.Background()
	spec := "name: web\nimage: probe:1\nreplicas: 1\nargs: [serve, \":8080\"]\nresources: {cpu: 100m, memory: 32Mi}\n" +
		"ports: [{name: http, port: 8080}]\nhealth: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}\nupdate: {deadline: 30s}\n"
	resp, err := ac.Deploy(ctx, masterapi.DeployRequest{Spec: spec})
	if err != nil {
		t.Fatalf("deploy over ssh: %v", err)
	}
	revs, err := h.Master.Client.Revisions(ctx, "web")
	if err != nil || len(revs) != 1 || revs[0].Revision != resp.Revision {
		t.Fatalf("the master has %+v, %v", revs, err)
	}
	if !strings.Contains(h.Master.Log(), "user=alice") {
		t.Fatalf("the master logged no session of alice:\n%s", h.Master.Log())
	}
	// A long stream over the session: the rollout's progress.
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last masterapi.Progress
	if err := ac.Watch(wctx, "web", resp.Revision, func(p masterapi.Progress) error { last = p; return nil }); err != nil {
		t.Fatalf("watch over ssh: %v (last %+v)", err, last)
	}
	if last.Ready != 1 {
		t.Fatalf("the rollout watched over ssh ended with %+v", last)
	}
	// An HTTP upgrade over the session: dial the app's port.
	conn, err := ac.DialApp(wctx, "web", 8080)
	if err != nil {
		t.Fatalf("dial over ssh: %v", err)
	}
	defer conn.Close()
	// The app answers and closes; its end must reach the client through
	// the node's gate, the master, moat api and both sshds, although the
	// client never ends its own input.
	io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n")
	b, err := readAllWithin(conn, 20*time.Second)
	if err != nil || !bytes.HasPrefix(b, []byte("HTTP/1.0 200")) {
		t.Fatalf("through dial over ssh: %v\n%s", err, b)
	}
}

// cannotForge: nothing the client sends or sets, and no other unix user
// on the host, makes the master take a session for someone else's.
func cannotForge(t *testing.T, h *testcluster.MasterHost, alice *testcluster.User, ac *masterapi.Client) {
	// Headers: nothing a request says changes its caller.
	w, err := whoami(ac, "Moat-User", "root", "X-Forwarded-User", "root", "Authorization", "Bearer root", "Moat-Tenant", "default")
	if err != nil || w.User != "alice" || w.Local {
		t.Fatalf("with forged headers: %+v, %v", w, err)
	}
	// A preamble of its own: only bytes of an HTTP connection, after the
	// one moat api wrote.
	forged := `moat-api/1 {"kind":"session","user":"root","auth":"publickey ssh-ed25519 AAAA"}` + "\n" +
		"GET /v1/whoami HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"
	out, _ := runWithin(t, h.SSH(alice, "api"), forged)
	if bytes.Contains(out, []byte(`"user":"root"`)) || !bytes.HasPrefix(out, []byte("HTTP/1.1 400")) {
		t.Fatalf("a second preamble from the client got:\n%s", out)
	}
	// The environment: sshd takes none of these from the client, and
	// moat api reads what sshd wrote, not what the client says.
	authFile := "/tmp/moat-forged-auth"
	if err := os.WriteFile(filepath.Join(h.Dir, "tmp", "moat-forged-auth"), []byte("publickey "+authorizedKey(h.NewUserKey("root"))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	whoamiReq := "GET /v1/whoami HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"
	out, _ = runWithin(t, h.SSH(alice, "-o", "SetEnv=SSH_USER_AUTH="+authFile+" MOAT_API_SOCKET=/tmp/nowhere LC_ALL=C", "api"), whoamiReq)
	if !bytes.Contains(out, []byte(`"user":"alice"`)) {
		t.Fatalf("with a forged environment:\n%s", out)
	}
	// Another unix user of the host, on the api socket itself: neither a
	// session (with its own SSH_USER_AUTH file naming alice's key) nor a
	// lookup is let in.
	if err := os.WriteFile(filepath.Join(h.Dir, "tmp", "moat-forged-auth"), []byte("publickey "+authorizedKey(alice)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
	cmd, err := h.Command(h.Name, append(nobody, "env", "SSH_USER_AUTH="+authFile, "/usr/local/bin/moat", "api")...)
	if err != nil {
		t.Fatal(err)
	}
	out, err = runWithin(t, cmd, whoamiReq)
	if err == nil || bytes.Contains(out, []byte("alice")) || bytes.Contains(out, []byte("HTTP/1.1")) {
		t.Fatalf("nobody opened a session as alice: %v\n%s", err, out)
	}
	lookup, err := h.Run(append(nobody, "/usr/local/bin/moat", "api", "keys", "moat", "ssh-ed25519", strings.Fields(authorizedKey(alice))[1])...)
	if err == nil || strings.Contains(lookup, "restrict") {
		t.Fatalf("nobody asked the master for alice's key: %v\n%s", err, lookup)
	}
}

// nothingButTheAPI: with an operator's key, no shell, no other command,
// no file transfer, no forwarding of any kind, no agent, no tty; and the
// host is as it was.
func nothingButTheAPI(t *testing.T, h *testcluster.MasterHost, alice *testcluster.User) {
	before := hostTmp(t, h)
	marker := "/tmp/moat-pwned-" + fmt.Sprint(time.Now().UnixNano())
	for _, tc := range []struct {
		name, why string
		args      []string
	}{
		{"shell command", "reaches only the moat API", []string{"touch " + marker}},
		{"api and more", "reaches only the moat API", []string{"api; touch " + marker}},
		{"api as another user", "reaches only the moat API", []string{"api --user root"}},
		{"sftp subsystem", "", []string{"-s", "sftp"}}, // sshd drops a subsystem's stderr
		{"legacy scp", "reaches only the moat API", []string{"scp -t " + marker}},
		{"stdio forward", "forwarding failed", []string{"-W", "127.0.0.1:22"}},
		{"remote forward", "forwarding failed", []string{"-o", "ExitOnForwardFailure=yes", "-N", "-R", "0:127.0.0.1:22"}},
	} {
		out, err := runWithin(t, h.SSH(alice, tc.args...), "") // ssh reads options after the destination too
		if err == nil || !strings.Contains(string(out), tc.why) {
			t.Errorf("%s: %v, want a failure saying %q:\n%s", tc.name, err, tc.why, out)
		}
	}
	// A login without a command is the api too, never a shell.
	out, _ := runWithin(t, h.SSH(alice), "touch "+marker+"\n")
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 400")) {
		t.Errorf("a login without a command got:\n%s", out)
	}
	// sftp and scp themselves, as an operator would try them.
	common := []string{"-F", "/dev/null", "-i", alice.KeyPath, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + h.KnownHosts, "-o", "BatchMode=yes"}
	if out, err := runWithin(t, exec.Command("sftp", append(append([]string{"-b", "-"}, common...), "moat@"+h.Addr)...), "put /etc/hostname "+marker+"\n"); err == nil {
		t.Errorf("sftp worked:\n%s", out)
	}
	for _, mode := range []string{"-s", "-O"} { // over sftp (the default), and the legacy protocol
		if out, err := runWithin(t, exec.Command("scp", append(append([]string{mode}, common...), "/etc/hostname", "moat@"+h.Addr+":"+marker)...), ""); err == nil {
			t.Errorf("scp %s worked:\n%s", mode, out)
		}
	}
	// Local forwards, to a port and to the master's api socket itself
	// (where a forged preamble would be read as moat api's): the client
	// listens, and every connection through it is refused by sshd.
	for _, target := range []string{"127.0.0.1:22", "/run/moat-api/api.sock"} {
		localForward(t, h, alice, target)
	}
	// An agent forwarded: no agent socket appears on the host.
	agentForward(t, h, alice)
	// A tty is refused; the session is the api, without one.
	out, _ = runWithin(t, h.SSH(alice, "-tt", "api"), "")
	if !strings.Contains(string(out), "PTY allocation request failed") {
		t.Errorf("-tt got a tty:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(h.Dir, marker)); err == nil {
		t.Fatalf("something wrote %s on the master host", marker)
	}
	// sshd removes each session's SSH_USER_AUTH file when the session
	// has gone, a moment after the client.
	deadline := time.Now().Add(5 * time.Second)
	for after := hostTmp(t, h); !slices.Equal(before, after); after = hostTmp(t, h) {
		if time.Now().After(deadline) {
			t.Fatalf("the master host's /tmp changed:\nbefore %q\nafter  %q", before, after)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// localForward runs ssh -N -L to target and checks a connection through
// it gets nothing: no byte of an SSH banner, an API answer or anything.
func localForward(t *testing.T, h *testcluster.MasterHost, u *testcluster.User, target string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := h.SSH(u, "-N", "-L", fmt.Sprintf("127.0.0.1:%d:%s", port, target))
	var out testcluster.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var c net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("-L %s: ssh never listened: %v\n%s", target, err, out.String())
		}
	}
	defer c.Close()
	c.Write([]byte(`moat-api/1 {"kind":"session","user":"root","auth":"publickey ssh-ed25519 AAAA"}` + "\nGET /v1/whoami HTTP/1.1\r\nHost: m\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if len(b) != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("-L %s: a connection through it got %q, %v", target, b, err)
	}
}

// agentForward opens a session with an agent forwarded and checks sshd
// made no agent socket for it on the host.
func agentForward(t *testing.T, h *testcluster.MasterHost, u *testcluster.User) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { agent.Process.Kill(); agent.Wait() }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent never listened")
		}
	}
	s := openSession(t, h, u, "-o", "ForwardAgent="+sock)
	defer s.close()
	if agents, _ := filepath.Glob(filepath.Join(h.Dir, "tmp", "ssh-*", "agent.*")); len(agents) != 0 {
		t.Errorf("an agent was forwarded to the master host: %v", agents)
	}
}

func certificates(t *testing.T, h *testcluster.MasterHost) {
	ctx := context.Background()
	dir := t.TempDir()
	ca, other := filepath.Join(dir, "ca"), filepath.Join(dir, "other_ca")
	for _, k := range []string{ca, other} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	caPub, _ := os.ReadFile(ca + ".pub")
	if _, err := h.Master.Client.TrustCA(ctx, masterapi.TrustCARequest{Name: "corp", Key: string(caPub)}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Master.Client.AddUser(ctx, masterapi.NewUser{Name: "carol", Principals: []string{"carol.c"},
		Roles: []masterapi.Role{{Role: "viewer", Tenant: "default"}}}); err != nil {
		t.Fatal(err)
	}
	// cert makes a fresh key with a certificate from signer.
	cert := func(name, signer, principal, validity string) *testcluster.User {
		u := h.NewUserKey(name)
		if out, err := exec.Command("ssh-keygen", "-q", "-s", signer, "-I", name+"@laptop", "-z", "42", "-n", principal, "-V", validity,
			u.KeyPath+".pub").CombinedOutput(); err != nil {
			t.Fatalf("sign: %v\n%s", err, out)
		}
		return u
	}
	// A session whose certificate ends soon, opened first: the rest runs
	// while it lasts.
	short := cert("carol5", ca, "carol.c", "-1m:+6s")
	expires := certExpiry(t, short)
	s := openSession(t, h, short)

	good := cert("carol", ca, "carol.c", "-5m:+1h")
	w, err := whoami(remote(h, good))
	if err != nil {
		t.Fatalf("a good certificate: %v", err)
	}
	if w.User != "carol" || !strings.HasPrefix(w.Credential, `cert "carol@laptop" serial 42 from CA SHA256:`) {
		t.Fatalf("whoami with a certificate: %+v", w)
	}
	for _, tc := range []struct {
		name string
		u    *testcluster.User
	}{
		{"expired", cert("carol2", ca, "carol.c", "20200101:20200102")},
		{"not yet valid", cert("carol4", ca, "carol.c", "+1h:+2h")},
		{"from an untrusted CA", cert("carol3", other, "carol.c", "-5m:+1h")},
		{"of a principal naming no user", cert("dave", ca, "dave", "-5m:+1h")},
	} {
		if out, err := runWithin(t, h.SSH(tc.u, "api"), ""); err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("a certificate %s: %v, want Permission denied:\n%s", tc.name, err, out)
		}
	}

	select {
	case <-s.done:
		if time.Now().Before(expires) {
			t.Fatalf("the session ended before its certificate expired")
		}
		t.Logf("certificate expiry → session closed after %v", time.Since(expires).Round(time.Millisecond))
	case <-time.After(time.Until(expires) + 5*time.Second):
		t.Fatal("the session outlived its certificate by 5s")
	}
}

// revocation: removing a user, one of a user's keys, or a trusted CA ends
// the sessions opened with them within 5s, and no other.
func revocation(t *testing.T, h *testcluster.MasterHost) {
	ctx := context.Background()
	measure := func(what string, s *session, revoke func() error) {
		t.Helper()
		start := time.Now()
		if err := revoke(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		select {
		case <-s.done:
			t.Logf("revocation → session closed: %s: %v", what, time.Since(start).Round(time.Microsecond))
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the session still open after 5s", what)
		}
	}

	bob := h.AddUser("bob", "viewer@default")
	measure("moat user rm", openSession(t, h, bob), func() error { return h.Master.Client.RemoveUser(ctx, "bob") })
	if out, err := runWithin(t, h.SSH(bob, "api"), ""); err == nil {
		t.Fatalf("a removed user logged in again:\n%s", out)
	}

	erin := h.AddUser("erin", "viewer@default")
	erin2 := h.NewUserKey("erin2")
	if _, err := h.Master.Client.AddUserKey(ctx, "erin", authorizedKey(erin2)); err != nil {
		t.Fatal(err)
	}
	kept := openSession(t, h, erin)
	defer kept.close()
	measure("moat user key rm", openSession(t, h, erin2), func() error {
		return h.Master.Client.RemoveUserKey(ctx, "erin", sshFingerprint(erin2))
	})
	if err := kept.ping(); err != nil {
		t.Fatalf("the session of erin's other key ended too: %v", err)
	}

	caDir := t.TempDir()
	ca := filepath.Join(caDir, "ca")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ca).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	caPub, _ := os.ReadFile(ca + ".pub")
	if _, err := h.Master.Client.TrustCA(ctx, masterapi.TrustCARequest{Name: "ops", Key: string(caPub)}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Master.Client.AddUser(ctx, masterapi.NewUser{Name: "frank", Principals: []string{"frank"},
		Roles: []masterapi.Role{{Role: "viewer", Tenant: "default"}}}); err != nil {
		t.Fatal(err)
	}
	frank := h.NewUserKey("frank")
	if out, err := exec.Command("ssh-keygen", "-q", "-s", ca, "-I", "frank@laptop", "-n", "frank", "-V", "-5m:+1h", frank.KeyPath+".pub").CombinedOutput(); err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	measure("moat user untrust-ca", openSession(t, h, frank), func() error { return h.Master.Client.UntrustCA(ctx, "ops") })
	if out, err := runWithin(t, h.SSH(frank, "api"), ""); err == nil {
		t.Fatalf("a certificate of an untrusted CA logged in:\n%s", out)
	}
	if err := kept.ping(); err != nil {
		t.Fatalf("erin's session ended with another's revocation: %v", err)
	}
}

// remote is a client of the master whose requests travel over the real
// OpenSSH client as u.
func remote(h *testcluster.MasterHost, u *testcluster.User) *masterapi.Client {
	return &masterapi.Client{Client: wire.Client{HTTP: h.HTTPClient(u), Base: "http://master", What: "master"}}
}

func whoami(c *masterapi.Client, header ...string) (masterapi.WhoAmI, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://master/v1/whoami", nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return masterapi.WhoAmI{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return masterapi.WhoAmI{}, wire.ResponseError(resp)
	}
	var w masterapi.WhoAmI
	return w, json.NewDecoder(resp.Body).Decode(&w)
}

// runWithin runs cmd with stdin and returns its combined output, killing
// it after 20s: a forward or session held open fails the test.
func runWithin(t *testing.T, cmd *exec.Cmd, stdin string) ([]byte, error) {
	t.Helper()
	var out testcluster.LockedBuffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return []byte(out.String()), err
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v still running after 20s:\n%s", cmd.Args, out.String())
		return nil, nil
	}
}

// readAllWithin reads c to its end, closing it if that takes longer than
// d: a session whose end is lost fails the test instead of hanging it.
func readAllWithin(c io.ReadCloser, d time.Duration) ([]byte, error) {
	timer := time.AfterFunc(d, func() { c.Close() })
	b, err := io.ReadAll(c)
	if !timer.Stop() {
		return b, fmt.Errorf("no end of stream within %v (%v)", d, err)
	}
	return b, err
}

// hostTmp lists the master host's /tmp, but for what the fixture and this
// test put there.
func hostTmp(t *testing.T, h *testcluster.MasterHost) []string {
	entries, err := os.ReadDir(filepath.Join(h.Dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); !strings.HasPrefix(n, "moat-") {
			names = append(names, n)
		}
	}
	return names
}

// certExpiry is when u's certificate ends.
func certExpiry(t *testing.T, u *testcluster.User) time.Time {
	b, err := os.ReadFile(u.KeyPath + "-cert.pub")
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(int64(k.(*ssh.Certificate).ValidBefore), 0)
}

func sshFingerprint(u *testcluster.User) string { return ssh.FingerprintSHA256(u.Signer.PublicKey()) }

func authorizedKey(u *testcluster.User) string { return sshkey.AuthorizedKey(u.Signer.PublicKey()) }

// session is an open `ssh moat@HOST api` that answered a ping.
type session struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	pongs chan string // the lines of later answers with "ok"
	done  chan error  // the client exited
}

// openSession opens `ssh moat@HOST api` as u (with extra ssh options) and
// waits for the answer to a first ping, within 20s.
func openSession(t *testing.T, h *testcluster.MasterHost, u *testcluster.User, opts ...string) *session {
	t.Helper()
	cmd := h.SSH(u, append(opts, "api")...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr testcluster.LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &session{cmd: cmd, stdin: stdin, pongs: make(chan string, 16), done: make(chan error, 1)}
	t.Cleanup(s.close)
	go func() {
		br := bufio.NewReader(stdout)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				break
			}
			if strings.Contains(line, `"ok":true`) {
				select {
				case s.pongs <- line:
				default:
				}
			}
		}
		s.done <- cmd.Wait()
		close(s.done)
	}()
	if err := s.ping(); err != nil {
		t.Fatalf("a new session of %s: %v\n%s", u.Name, err, stderr.String())
	}
	return s
}

// ping asks the master on the session and waits for its answer.
func (s *session) ping() error {
	if _, err := io.WriteString(s.stdin, "GET /v1/ping HTTP/1.1\r\nHost: m\r\n\r\n"); err != nil {
		return err
	}
	select {
	case <-s.pongs:
		return nil
	case err := <-s.done:
		return fmt.Errorf("the session ended: %v", err)
	case <-time.After(20 * time.Second):
		return fmt.Errorf("no answer to a ping within 20s")
	}
}

func (s *session) close() {
	s.stdin.Close()
	s.cmd.Process.Kill()
}
