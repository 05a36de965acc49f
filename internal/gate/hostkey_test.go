package gate_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestMasterKeyRotatesOnlyAOneTimeHostKey: an attacker holding the
// master's key, with plain OpenSSH, can replace a node's host key only
// when the node booted with a one-time key (firstboot's marker names the
// key sshd serves), and only once. A node enrolled by hand (no marker), a
// stale marker, a wrong pinned key and the peer's key are refused with the
// node's files byte for byte as before. After the rotation a fresh
// connection pinning the old key is refused, one pinning the new key
// works, and a second rotation is refused.
func TestMasterKeyRotatesOnlyAOneTimeHostKey(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.Install("n1") // as moat node add leaves it: no marker
	a := newAttacker(t, c, "n1")
	n, err := c.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	oneTime := c.HostKey("n1")
	fp := ssh.FingerprintSHA256(oneTime)
	marker := filepath.Join(n.Dir, "etc-moat", filepath.Base(nodeapi.HostKeyOnetime))
	rotate := func(a *attacker, current string) (int, string) {
		return a.rpc(http.MethodPost, "/v1/hostkey", fmt.Sprintf(`{"current":%q}`, current))
	}
	refused := func(what string, a *attacker, current, says string) {
		t.Helper()
		before := c.NodeState("n1")
		code, body := rotate(a, current)
		if code != http.StatusForbidden || !strings.Contains(body, says) {
			t.Errorf("%s: %d %s; want 403 saying %q", what, code, body, says)
		}
		if diff := cmp.Diff(before, c.NodeState("n1")); diff != "" {
			t.Errorf("%s changed the node's files (-before +after):\n%s", what, diff)
		}
	}

	refused("a node enrolled by hand", a, fp, "not a one-time key")

	other, err := sshkey.GenerateKey(filepath.Join(t.TempDir(), "other"), "other")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(marker, []byte(ssh.FingerprintSHA256(other.PublicKey())+"\n"), 0o600)
	refused("a stale marker", a, fp, "was replaced since")

	os.WriteFile(marker, []byte(fp+"\n"), 0o600)
	refused("a key pinned other than the one-time key", a, ssh.FingerprintSHA256(other.PublicKey()), "the caller pinned")

	peer := *a
	peer.key = c.PeerKeyPath
	before := c.NodeState("n1")
	if out, errOut, code := peer.ssh(`{"current":"`+fp+`"}`, "rpc"); code == 0 || !strings.Contains(errOut, "role peer may not use rpc") {
		t.Errorf("the peer key: exit %d, stdout %q, stderr %q; want refused by the gate", code, out, errOut)
	}
	if diff := cmp.Diff(before, c.NodeState("n1")); diff != "" {
		t.Errorf("the peer key changed the node's files:\n%s", diff)
	}

	code, body := rotate(a, fp)
	if code != http.StatusOK {
		t.Fatalf("rotating the one-time key: %d %s", code, body)
	}
	var got nodeapi.HostKeyRotated
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	fresh, err := sshkey.ParsePublicKey(got.New)
	if err != nil {
		t.Fatal(err)
	}
	if got.Old != sshkey.AuthorizedKey(oneTime) || ssh.FingerprintSHA256(fresh) == fp {
		t.Fatalf("answer %+v; want old = the one-time key and a new one", got)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the marker is still there: %v", err)
	}
	onDisk, _ := os.ReadFile(filepath.Join(n.Dir, "etc-ssh", "ssh_host_ed25519_key.pub"))
	if k, err := sshkey.ParsePublicKey(string(onDisk)); err != nil || ssh.FingerprintSHA256(k) != ssh.FingerprintSHA256(fresh) {
		t.Errorf("the host key file holds %q, not the key returned", onDisk)
	}

	// A fresh connection pinning the old key is refused; one pinning the
	// new key works (sshd re-executes on SIGHUP: poll until it listens).
	_, errOut, code := a.ssh("", "rpc")
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(errOut, "Connection refused") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		_, errOut, code = a.ssh("", "rpc")
	}
	if code == 0 || !strings.Contains(errOut, "Host key verification failed") {
		t.Errorf("a connection pinning the old key: exit %d, %s; want the host key refused", code, errOut)
	}
	b := newAttacker(t, c, "n1")
	os.WriteFile(b.known, []byte(b.addr+" "+got.New+"\n"), 0o600)
	if code, body := b.rpc(http.MethodGet, "/v1/ping", ""); code != http.StatusOK {
		t.Errorf("a connection pinning the new key: %d %s", code, body)
	}
	refused("a second rotation", b, ssh.FingerprintSHA256(fresh), "not a one-time key")
	refused("a second rotation naming the old key", b, fp, "not a one-time key")
}
