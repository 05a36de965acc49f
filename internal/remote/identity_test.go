package remote

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/inventory"
)

// TestContextsWithOwnKeysShareNoConnection: two contexts reaching the same
// login on the same host, each with its own key (an operator's viewer and
// admin identities), are each served as their own key's user, one after
// the other, with one control directory: neither rides the other's shared
// connection, which ssh's ControlPath %C (host, port, login) would give
// it.
func TestContextsWithOwnKeysShareNoConnection(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	marks := t.TempDir()
	keys := map[string]string{}
	var lines []string
	for _, user := range []string{"viewer", "admin"} {
		key := filepath.Join(dir, user)
		run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", user, "-f", key)
		pub, _ := os.ReadFile(key + ".pub")
		keys[user] = key
		lines = append(lines, fmt.Sprintf(`restrict,command="MOAT_REMOTE_TEST_USER=%s MOAT_REMOTE_TEST_SERVE=%s %s" %s`,
			user, marks, exe, strings.TrimSpace(string(pub))))
	}
	sshd := startSSHD(t, lines...)
	known := filepath.Join(dir, "known_hosts")
	os.WriteFile(known, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", sshd.Port, sshd.HostKey)), 0o600)
	control := t.TempDir()
	ctx := context.Background()
	for _, user := range []string{"viewer", "admin", "viewer"} {
		m := &Master{Access: inventory.Access{Dest: "root@127.0.0.1", Port: sshd.Port}, ControlDir: control,
			SSH: []string{"ssh", "-F", "/dev/null", "-i", keys[user], "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
				"-o", "UserKnownHostsFile=" + known, "-o", "GlobalKnownHostsFile=/dev/null"}}
		t.Cleanup(func() { m.Exit() })
		body, err := get(ctx, m.HTTP(), "/v1/whoami")
		if err != nil || body != fmt.Sprintf(`{"user":%q}`, user) {
			t.Errorf("the %s context is served as %s, %v", user, body, err)
		}
	}
}
