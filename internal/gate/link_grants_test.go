package gate_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestMasterKeyLinkGrantsConfined: the master's key may pin link keys on
// a node (PUT /v1/links over `ssh ... rpc`), and nothing more. A grant
// whose key smuggles a second key, options or anything but one public
// key, or whose ID or target would break out of the line, is refused and
// authorized_keys is untouched; a key it does pin gets the link role and
// nothing else (no shell, no rpc); an empty table restores the node's
// files byte for byte. The master cannot read the table back: GET
// /v1/links is root's.
func TestMasterKeyLinkGrantsConfined(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.Install("n1")
	a := newAttacker(t, c, "n1")
	state := c.NodeState("n1")

	// The attacker's own key pair, to pin and then use.
	keyPath := filepath.Join(t.TempDir(), "evil_ed25519")
	signer, err := sshkey.GenerateKey(keyPath, "evil")
	if err != nil {
		t.Fatal(err)
	}
	pub := sshkey.AuthorizedKey(signer.PublicKey())
	other, err := sshkey.GenerateKey(filepath.Join(t.TempDir(), "other_ed25519"), "other")
	if err != nil {
		t.Fatal(err)
	}
	put := func(grants ...nodeapi.LinkGrant) (int, string) {
		body, _ := json.Marshal(nodeapi.LinkTable{Grants: grants})
		return a.rpc("PUT", "/v1/links", string(body))
	}
	grant := func(key string) nodeapi.LinkGrant {
		return nodeapi.LinkGrant{ID: "web>db:5432", Target: "db", Port: 5432, Key: key}
	}
	for name, g := range map[string]nodeapi.LinkGrant{
		"a second key":          grant(pub + "\n" + sshkey.AuthorizedKey(other.PublicKey())),
		"a forced command":      grant(`command="/bin/sh" ` + pub),
		"options":               grant("no-pty,permitopen=\"*:*\" " + pub),
		"an option word":        grant("pty " + strings.Fields(pub)[1]),
		"a comment":             grant(pub + " root"),
		"not a key":             grant("ssh-ed25519 bm90IGEga2V5"),
		"an ID breaking out":    {ID: "x\"\nssh-ed25519 AAAA", Target: "db", Port: 5432, Key: pub},
		"a target breaking out": {ID: "web>db:5432", Target: `db" ` + pub, Port: 5432, Key: pub},
	} {
		if status, body := put(g); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, status, body)
		}
		if diff := cmp.Diff(state, c.NodeState("n1")); diff != "" {
			t.Fatalf("%s changed the node's files (-before +after):\n%s", name, diff)
		}
	}

	// A proper grant pins the key to the link role, exactly.
	if status, body := put(grant(pub)); status != http.StatusNoContent {
		t.Fatalf("a proper grant: %d %s", status, body)
	}
	n, _ := c.Node("n1")
	keys, err := os.ReadFile(filepath.Join(n.Dir, "root", ".ssh", "authorized_keys"))
	if err != nil {
		t.Fatal(err)
	}
	if line := nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, grant(pub)); strings.Count(string(keys), pub) != 1 || !strings.Contains(string(keys), line+"\n") {
		t.Fatalf("authorized_keys after the grant:\n%s\nwant the one line %q", keys, line)
	}
	// With it, real OpenSSH gets the link role's mux and nothing else.
	a.key = keyPath
	for _, cmd := range [][]string{{"id"}, {"rpc"}, {"cat", "/etc/moat/node.conf"}, {"dial", "db:5432"}} {
		out, errOut, code := a.ssh("", cmd...)
		if code == 0 || out != "" || !strings.Contains(errOut, "mux") {
			t.Errorf("ssh -i evil %v: exit %d, out %q, err %q; want a refusal naming what the key may run", cmd, code, out, errOut)
		}
	}
	a.key = ""
	// The master cannot read the table back.
	if status, _ := a.rpc("GET", "/v1/links", ""); status != http.StatusForbidden {
		t.Errorf("GET /v1/links with the master's key: %d, want 403", status)
	}

	if status, body := put(); status != http.StatusNoContent {
		t.Fatalf("an empty table: %d %s", status, body)
	}
	after := c.NodeState("n1")
	if diff := cmp.Diff(state, after); diff != "" {
		t.Fatalf("after the grant was taken back, the node's files differ (-before +after):\n%s", diff)
	}
}
