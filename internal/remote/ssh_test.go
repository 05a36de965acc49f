package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
)

// world is a master host's sshd whose forced command serves HTTP on the
// session (the test binary), a bastion that may only forward to it, an
// ssh-agent holding the only key, and an ssh config naming both.
type world struct {
	master, bastion *sshd
	config, known   string
	marks           string // where the served side leaves marks
}

func newWorld(t *testing.T) *world {
	t.Helper()
	sock, pub := agent(t)
	t.Setenv("SSH_AUTH_SOCK", sock)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{marks: t.TempDir()}
	w.master = startSSHD(t, fmt.Sprintf(`restrict,command="MOAT_REMOTE_TEST_SERVE=%s %s" %s`, w.marks, exe, pub))
	w.bastion = startSSHD(t, fmt.Sprintf(`restrict,port-forwarding,permitopen="127.0.0.1:%d" %s`, w.master.Port, pub))
	dir := t.TempDir()
	w.known = filepath.Join(dir, "known_hosts")
	os.WriteFile(w.known, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n[127.0.0.1]:%d %s\n",
		w.master.Port, w.master.HostKey, w.bastion.Port, w.bastion.HostKey)), 0o600)
	w.config = filepath.Join(dir, "ssh_config")
	os.WriteFile(w.config, []byte(fmt.Sprintf(`Host moat-master
  HostName 127.0.0.1
  Port %d
  ProxyJump moat-bastion
Host moat-bastion
  HostName 127.0.0.1
  Port %d
Host *
  User root
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
`, w.master.Port, w.bastion.Port, w.known)), 0o600)
	return w
}

// client is a Master reaching dest with the world's ssh config.
func (w *world) client(t *testing.T, dest string, port int, tenant string) *Master {
	m := &Master{Access: inventory.Access{Dest: dest, Port: port}, Tenant: tenant,
		SSH: []string{"ssh", "-F", w.config}, ControlDir: t.TempDir()}
	t.Cleanup(func() { m.Exit() })
	return m
}

// TestThroughJumpHostWithAgent: requests, a stream and an upgraded
// connection reach the master through a bastion named in the ssh config,
// with the key only in ssh-agent; closing a stream ends the session on
// the master's side.
func TestThroughJumpHostWithAgent(t *testing.T) {
	w := newWorld(t)
	m := w.client(t, "moat-master", 0, "web")
	hc := m.HTTP()
	ctx := context.Background()
	for i := range 2 {
		body, err := get(ctx, hc, "/v1/ping")
		if err != nil || !strings.Contains(body, `"tenant":"web"`) {
			t.Fatalf("ping %d: %q %v", i, body, err)
		}
	}
	if socks, _ := filepath.Glob(filepath.Join(m.ControlDir, "*")); len(socks) != 1 {
		t.Errorf("shared connection sockets: %v, want one", socks)
	}
	if !strings.Contains(w.bastion.log.String(), "Accepted publickey for root") {
		t.Errorf("the bastion was not used:\n%s", w.bastion.log.String())
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://master/stream", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := firstLine(resp.Body); line != "first\n" {
		t.Fatalf("stream: %q %v", line, err)
	}
	resp.Body.Close()
	hc.CloseIdleConnections()
	waitFile(t, filepath.Join(w.marks, "stream-ended"))

	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ectx, http.MethodPost, "http://master/echo", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err = hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	rwc := resp.Body.(io.ReadWriteCloser)
	defer rwc.Close()
	rwc.Write([]byte("hello\n"))
	if line, err := firstLine(rwc); line != "hello\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
}

// TestHostKeyRefused: an unknown and a changed host key are refused
// before the master's command runs, naming both fingerprints; known_hosts
// is left as it was.
func TestHostKeyRefused(t *testing.T) {
	w := newWorld(t)
	offered := fingerprint(t, w.master.HostKey)
	other := startSSHD(t) // only for another host key
	tests := []struct {
		name, known string
		want        []string
	}{
		{"unknown", fmt.Sprintf("[127.0.0.1]:%d %s\n", w.bastion.Port, w.bastion.HostKey),
			[]string{"is not in known_hosts", "offered by the host:  " + offered, "none: not in known_hosts", "StrictHostKeyChecking=accept-new"}},
		{"changed", fmt.Sprintf("[127.0.0.1]:%d %s\n", w.master.Port, other.HostKey),
			[]string{"has CHANGED", "offered by the host:  " + offered, "known_hosts has:      " + fingerprint(t, other.HostKey), "ssh-keygen -f '" + w.known + "' -R "}},
	}
	for _, tt := range tests {
		for _, via := range []string{"direct", "jump"} {
			t.Run(tt.name+"/"+via, func(t *testing.T) {
				os.WriteFile(w.known, []byte(tt.known), 0o600)
				m := w.client(t, "root@127.0.0.1", w.master.Port, "")
				if via == "jump" {
					os.WriteFile(w.known, []byte(tt.known+fmt.Sprintf("[127.0.0.1]:%d %s\n", w.bastion.Port, w.bastion.HostKey)), 0o600)
					m = w.client(t, "moat-master", 0, "")
				}
				before, _ := os.ReadFile(w.known)
				_, err := get(context.Background(), m.HTTP(), "/v1/ping")
				var he *HostKeyError
				if !errors.As(err, &he) || !errors.Is(err, errs.ErrForbidden) {
					t.Fatalf("want a host key refusal, got %v", err)
				}
				for _, s := range tt.want {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("message lacks %q:\n%s", s, err)
					}
				}
				if after, _ := os.ReadFile(w.known); string(after) != string(before) {
					t.Errorf("known_hosts changed:\n%s", after)
				}
			})
		}
	}
	if strings.Contains(w.master.log.String(), "Accepted publickey") {
		t.Errorf("a refused host was logged in to:\n%s", w.master.log.String())
	}
}

func get(ctx context.Context, hc *http.Client, path string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://master"+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func fingerprint(t *testing.T, authorized string) string {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorized))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(k)
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear: the session was not ended", path)
		}
	}
}
