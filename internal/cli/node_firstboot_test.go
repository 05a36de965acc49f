package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// TestNodeFirstboot: the user data is applied once; a refused one changes
// nothing and exits 2 naming what was refused; the flags are checked.
func TestNodeFirstboot(t *testing.T) {
	priv, pub, err := cloudinit.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	d := cloudinit.NodeData{Hostname: "web-1", HostKeyPrivate: priv, HostKeyPublic: pub}
	_, masterPub, _ := cloudinit.NewHostKey() // any ed25519 public key
	d.AuthorizedKeys = []string{nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleMaster, masterPub)}
	good, err := cloudinit.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	firstboot := func(root, doc string, extra ...string) (int, string) {
		file := filepath.Join(t.TempDir(), "user-data")
		os.WriteFile(file, []byte(doc), 0o600)
		var stdout, stderr bytes.Buffer
		args := append([]string{"node", "firstboot", "--root", root, "--user-data", file}, extra...)
		code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}

	root := t.TempDir()
	if code, out := firstboot(root, good+"runcmd:\n  - id\n"); code != 2 || !strings.Contains(out, "refused") || !strings.Contains(out, `"runcmd"`) {
		t.Errorf("runcmd: exit %d: %s", code, out)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("a refused user data wrote %v", entries)
	}
	if code, out := firstboot(root, good); code != 0 || !strings.Contains(out, "web-1") {
		t.Fatalf("exit %d: %s", code, out)
	}
	fp, _ := d.Fingerprint()
	if b, _ := os.ReadFile(filepath.Join(root, nodeapi.HostKeyOnetime)); string(b) != fp+"\n" {
		t.Errorf("hostkey.onetime %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, nodeapi.FirstbootDone)); err != nil {
		t.Errorf("marker: %v", err)
	}
	// Once only: another user data is not applied.
	other := d
	other.Hostname = "web-2"
	doc, _ := cloudinit.Render(other)
	if code, out := firstboot(root, doc); code != 0 || !strings.Contains(out, "already done") {
		t.Errorf("second run: exit %d: %s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "web-1\n" {
		t.Errorf("hostname %q after a second run", b)
	}
	var stdout, stderr bytes.Buffer
	for _, args := range [][]string{
		{"node", "firstboot"},
		{"node", "firstboot", "--metadata", "local"},
		{"node", "firstboot", "--metadata", "hetzner", "--user-data", "x"},
	} {
		if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
