package gate_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/ssh/agent"

	"github.com/moatcloud/moat/internal/testcluster"
)

// TestMasterKeyCannotGetAShell: whatever an attacker holding the master's
// key asks for, no shell and no other program runs.
func TestMasterKeyCannotGetAShell(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.Install("n1")
	a := newAttacker(t, c, "n1")
	tests := []struct {
		name string
		args []string
		says string
	}{
		{"login shell", nil, "interactive login refused"},
		// restrict refuses the pty, and ssh gives up before asking for anything.
		{"login shell with a tty", []string{"-tt"}, "PTY allocation request failed"},
		{"a command", []string{"id"}, "command refused"},
		{"a command with a tty", []string{"-tt", "id"}, "PTY allocation request failed"},
		{"a command asking for a tty only if possible", []string{"-t", "id"}, "command refused"},
		{"a shell command line", []string{"bash -c id"}, "command refused"},
		{"an allowed verb with more", []string{"rpc; id"}, "command refused"},
		{"legacy scp sink", []string{"scp -t /tmp"}, "command refused"},
		{"legacy scp source", []string{"scp -f /etc/shadow"}, "command refused"},
		{"a subsystem other than sftp", []string{"-s", "netconf"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := a.ssh("", tt.args...)
			if code == 0 {
				t.Errorf("exit 0; want a refusal (stdout %q)", out)
			}
			if strings.Contains(out, "uid=") || strings.Contains(out, "root") {
				t.Errorf("a program ran: stdout %q", out)
			}
			if !strings.Contains(errOut, tt.says) {
				t.Errorf("stderr %q does not say %q", errOut, tt.says)
			}
		})
	}
}

// TestMasterKeyCannotForward: no local, remote or dynamic forwarding, no
// agent forwarding (restrict in authorized_keys), with OpenSSH and with
// the Go client.
func TestMasterKeyCannotForward(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.Install("n1")
	a := newAttacker(t, c, "n1")
	client := masterClient(t, c, "n1")
	if conn, err := client.Dial("tcp", "127.0.0.1:22"); err == nil {
		conn.Close()
		t.Error("Go client: direct-tcpip (ssh -L) accepted")
	}
	if ln, err := client.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
		t.Error("Go client: tcpip-forward (ssh -R) accepted")
	}
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.RequestAgentForwarding(sess); err == nil {
		t.Error("Go client: agent forwarding accepted")
	}
	sess.Close()

	_, errOut, code := a.ssh("", "-N", "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:22")
	if code == 0 || !strings.Contains(errOut, "forwarding failed") {
		t.Errorf("ssh -R: exit %d, stderr %q; want forwarding refused", code, errOut)
	}
	for _, flag := range []string{"-L", "-D"} {
		t.Run("ssh "+flag, func(t *testing.T) {
			port := freePort(t)
			spec := fmt.Sprintf("127.0.0.1:%d:127.0.0.1:22", port)
			if flag == "-D" {
				spec = fmt.Sprintf("127.0.0.1:%d", port)
			}
			cmd := exec.Command("ssh", append(a.opts(), "-N", flag, spec, "root@"+a.addr)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			if reached := throughForward(t, port, flag == "-D"); reached {
				t.Errorf("ssh %s: reached the node's sshd through the forward", flag)
			}
		})
	}
}

// throughForward connects to a local forward and reports whether anything
// on the far side answered (an SSH banner).
func throughForward(t *testing.T, port int, socks bool) bool {
	t.Helper()
	var conn net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the local forward never listened: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer conn.Close()
	if socks {
		// SOCKS5: no auth, then CONNECT 127.0.0.1:22.
		conn.Write([]byte{5, 1, 0})
		conn.Write([]byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 22})
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.Contains(b, "SSH-")
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestSFTPAndSCPConfined: OpenSSH's sftp and scp with the master's key
// reach the inbox and nothing else.
func TestSFTPAndSCPConfined(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.Install("n1")
	n, _ := c.Node("n1")
	os.WriteFile(filepath.Join(n.Dir, "etc-moat", "node.conf"), []byte("cgroup-parent=moat-"+c.Name+"-n1\nmax-upload=1Mi\n"), 0o600)
	inbox := filepath.Join(n.Dir, "var-lib-moat", "inbox")
	a := newAttacker(t, c, "n1")
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("hello"), 0o600)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 2<<20), 0o600)
	marker := fmt.Sprintf("moat-pwned-%d", time.Now().UnixNano())
	if err := os.MkdirAll(filepath.Join(inbox, "blobs"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/etc", filepath.Join(inbox, "etc-link"))
	os.Symlink("../../../../../../../../tmp", filepath.Join(inbox, "tmp-link"))

	refused := []struct{ name, command string }{
		{"read /etc/shadow", "get /etc/shadow " + filepath.Join(dir, "shadow")},
		{"read through ..", "get ../../../../etc/shadow " + filepath.Join(dir, "shadow2")},
		{"read through a planted symlink", "get etc-link/shadow " + filepath.Join(dir, "shadow3")},
		{"write through a planted symlink", "put " + small + " tmp-link/" + marker},
		{"make a symlink", "symlink /etc/shadow " + marker},
		{"make a hard link", "ln small " + marker},
		{"oversized upload", "put " + big + " blobs/sha256-" + strings.Repeat("b", 64)},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if out, errOut, code := a.sftp(tt.command); code == 0 {
				t.Errorf("sftp %q succeeded: %q %q", tt.command, out, errOut)
			}
		})
	}
	if out, _, _ := a.sftp("ls -la etc-link/"); strings.Contains(out, "passwd") || strings.Contains(out, "shadow") {
		t.Errorf("listing a planted symlink shows /etc: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "shadow")); err == nil {
		t.Error("a shadow file was fetched")
	}
	if _, err := os.Stat(filepath.Join(inbox, "blobs", "sha256-"+strings.Repeat("b", 64))); err == nil {
		t.Error("the oversized upload was kept")
	}
	// Absolute and .. destinations are refused by name, and never land outside.
	for _, dst := range []string{"/tmp/" + marker, "../../../../tmp/" + marker} {
		a.sftp("put " + small + " " + dst)
	}
	_, errOut, code := a.run("", "scp", append(a.opts(), "-O", small, "root@"+a.addr+":/tmp/"+marker)...)
	if code == 0 {
		t.Errorf("legacy scp succeeded: %q", errOut)
	}
	a.run("", "scp", append(a.opts(), small, "root@"+a.addr+":/tmp/"+marker)...)
	if _, err := os.Stat(filepath.Join(n.Dir, "tmp", marker)); err == nil {
		t.Error("an upload escaped to the node's /tmp")
	}
	// The signing policy is the operator's: the master's key cannot
	// replace it, whatever path it tries.
	policy := filepath.Join(n.Dir, "etc-moat", "allowed_signers")
	before, _ := os.ReadFile(policy)
	evil := filepath.Join(dir, "evil_signers")
	os.WriteFile(evil, []byte("evil ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFz9kCz1Gd2hgTDBxsk6pEIkbkeVF3aVn7IYO1f6VXBc\n"), 0o600)
	for _, dst := range []string{"/etc/moat/allowed_signers", "../../../../etc/moat/allowed_signers", "etc-link/moat/allowed_signers"} {
		a.sftp("put " + evil + " " + dst)
	}
	a.run("", "scp", append(a.opts(), evil, "root@"+a.addr+":/etc/moat/allowed_signers")...)
	if after, _ := os.ReadFile(policy); string(after) != string(before) || len(before) == 0 {
		t.Errorf("the node's allowed signers changed through the master's key:\n%s", after)
	}
	if _, _, code := a.run("", "scp", append(a.opts(), "root@"+a.addr+":/etc/shadow", filepath.Join(dir, "s"))...); code == 0 {
		t.Error("scp fetched /etc/shadow")
	}
	// What the inbox is for still works.
	blob := "blobs/sha256-" + strings.Repeat("0123456789abcdef", 4)
	if _, errOut, code := a.sftp("put " + small + " " + blob); code != 0 {
		t.Fatalf("a normal upload failed: %s", errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(inbox, blob)); string(b) != "hello" {
		t.Errorf("inbox/%s = %q", blob, b)
	}
}

// TestDialOnlyDeclaredPorts: dial reaches a declared container port, and
// nothing else.
func TestDialOnlyDeclaredPorts(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.Install("n1")
	runProbe(t, c, "n1")
	a := newAttacker(t, c, "n1")
	out, errOut, code := a.ssh("GET / HTTP/1.0\r\n\r\n", "dial web:8080")
	if code != 0 || !strings.Contains(out, "probe web") {
		t.Fatalf("dial a declared port: exit %d, %q %q", code, out, errOut)
	}
	for _, target := range []string{"web:9999", "web:22", "nosuch:8080"} {
		out, errOut, code := a.ssh("GET / HTTP/1.0\r\n\r\n", "dial "+target)
		if code == 0 || out != "" {
			t.Errorf("dial %s: exit %d, stdout %q; want refused", target, code, out)
		}
		if !strings.Contains(errOut, "moat gate:") {
			t.Errorf("dial %s: stderr %q; want the gate's refusal", target, errOut)
		}
	}
}

// TestOnlySSHListens scans every TCP port of every node: only 22 answers,
// even with a container that declares a port running on the node; on an
// edge node (edge=true in its node.conf), 22, 80 and 443.
func TestOnlySSHListens(t *testing.T) {
	c := testcluster.NewCluster(t, 2)
	c.Install("n1")
	c.InstallWith("n2", "edge=true")
	runProbe(t, c, "n1")
	runProbe(t, c, "n2")
	want := map[string][]int{"n1": {22}, "n2": {22, 80, 443}}
	// The edge opens its listeners once its daemon runs.
	edge, _ := c.Node("n2")
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range []string{"80", "443"} {
		for {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(edge.Addr.String(), port), time.Second)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the edge n2 does not listen on %s within 10s: %v", port, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, n := range c.Nodes {
		open := scan(n.Addr.String())
		slices.Sort(open)
		if !slices.Equal(open, want[n.Name]) {
			t.Errorf("node %s: open TCP ports %v, want only %v", n.Name, open, want[n.Name])
		}
		// And as an attacker's tool sees it: Debian's nmap, every port.
		if open := nmapOpen(t, n.Addr.String()); !slices.Equal(open, want[n.Name]) {
			t.Errorf("node %s: nmap -p- finds open TCP ports %v, want only %v", n.Name, open, want[n.Name])
		}
	}
}

// nmapOpen scans every TCP port of host with nmap (a connect scan, as an
// unprivileged attacker would) and returns the open ones, sorted.
func nmapOpen(t *testing.T, host string) []int {
	t.Helper()
	if _, err := exec.LookPath("nmap"); err != nil {
		t.Skip("needs nmap: apt-get install nmap (scripts/test installs it)")
	}
	out, err := exec.Command("nmap", "-n", "-Pn", "-sT", "-p-", "--open", "-T4", "-oG", "-", host).Output()
	if err != nil {
		t.Fatalf("nmap %s: %v", host, err)
	}
	var open []int
	for _, m := range regexp.MustCompile(`(\d+)/open/tcp`).FindAllStringSubmatch(string(out), -1) {
		p, _ := strconv.Atoi(m[1])
		open = append(open, p)
	}
	if !strings.Contains(string(out), "# Nmap done") {
		t.Fatalf("nmap %s did not finish: %s", host, out)
	}
	slices.Sort(open)
	return open
}

func scan(host string) []int {
	ports := make(chan int)
	var mu sync.Mutex
	var open []int
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range ports {
				conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, fmt.Sprint(p)), 2*time.Second)
				if err == nil {
					conn.Close()
					mu.Lock()
					open = append(open, p)
					mu.Unlock()
				}
			}
		}()
	}
	for p := 1; p <= 65535; p++ {
		ports <- p
	}
	close(ports)
	wg.Wait()
	return open
}

// TestPeerKeyOnlyReadsBlobs: the key nodes fetch images from each other
// with reads whole blobs by digest, from the store or the inbox, and does
// nothing else: no shell, no command, no rpc, no sftp, no partial upload.
func TestPeerKeyOnlyReadsBlobs(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.Install("n1")
	n, _ := c.Node("n1")
	a := newAttacker(t, c, "n1")
	a.key = c.PeerKeyPath

	plant := func(dir, name, content string) string {
		os.MkdirAll(dir, 0o700)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return content
	}
	hexOf := func(s string) string { return digest.FromString(s).Encoded() }
	stored := "a stored blob"
	plant(filepath.Join(n.Dir, "var-lib-moat", "images", "blobs", "sha256"), hexOf(stored), stored)
	uploaded := "an uploaded blob"
	plant(filepath.Join(n.Dir, "var-lib-moat", "inbox", "blobs"), "sha256-"+hexOf(uploaded), uploaded)
	partial := "half an upload"
	plant(filepath.Join(n.Dir, "var-lib-moat", "inbox", "blobs"), "sha256-"+hexOf(partial)+".part", partial)

	for _, tt := range []struct{ name, cmd, out string }{
		{"a stored blob", "blob sha256:" + hexOf(stored), stored},
		{"a stored blob from an offset", "blob sha256:" + hexOf(stored) + " 2", stored[2:]},
		{"an uploaded blob", "blob sha256:" + hexOf(uploaded), uploaded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := a.ssh("", tt.cmd)
			if code != 0 || out != tt.out {
				t.Errorf("%s: exit %d, stdout %q (stderr %q), want %q", tt.cmd, code, out, errOut, tt.out)
			}
		})
	}
	for _, tt := range []struct {
		name string
		args []string
		says string
	}{
		{"a partial upload", []string{"blob sha256:" + hexOf(partial)}, "not on this node"},
		{"a path for a digest", []string{"blob sha256:../../../etc/shadow"}, "want sha256:<64 hex digits>"},
		{"login shell", nil, "interactive login refused"},
		{"a command", []string{"id"}, "command refused"},
		{"the master's rpc", []string{"rpc"}, "role peer may not use rpc"},
		{"the master's sftp", []string{"sftp"}, "role peer may not use sftp"},
		{"the master's dial", []string{"dial web:8080"}, "role peer may not use dial"},
		// OpenSSH does not pass a subsystem's stderr on.
		{"the sftp subsystem", []string{"-s", "sftp"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := a.ssh("", tt.args...)
			if code == 0 || out != "" || !strings.Contains(errOut, tt.says) {
				t.Errorf("exit %d, stdout %q, stderr %q; want a refusal saying %q", code, out, errOut, tt.says)
			}
		})
	}
	if _, errOut, code := a.sftp("get /etc/shadow"); code == 0 {
		t.Errorf("sftp with the peer key: exit 0 (%s)", errOut)
	}
}
