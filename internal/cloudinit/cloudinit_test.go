package cloudinit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/nodeapi"
)

func pubLine(t testing.TB, priv string) string {
	t.Helper()
	k, err := ssh.ParsePrivateKey([]byte(priv))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey())))
}

func testData(t testing.TB) NodeData {
	t.Helper()
	priv, pub, err := NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	master, _, _ := NewHostKey()
	peer, _, _ := NewHostKey()
	return NodeData{
		Hostname: "web-3", HostKeyPrivate: priv, HostKeyPublic: pub,
		AuthorizedKeys: []string{
			nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleMaster, pubLine(t, master)),
			nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RolePeer, pubLine(t, peer)),
		},
		PeerKey: []byte(peer),
	}
}

func TestRenderParse(t *testing.T) {
	d := testData(t)
	doc, err := Render(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#cloud-config\n", "hostname: 'web-3'\n", "ssh_keys:\n", "ed25519_private: |\n", "write_files:\n",
		"path: '/root/.ssh/authorized_keys'\n", "append: true\n", "permissions: '0600'\n", "path: '/etc/moat/peer_ed25519'\n"} {
		if !strings.Contains(doc, want) {
			t.Errorf("rendered document lacks %q:\n%s", want, doc)
		}
	}
	got, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("parse what Render made: %v\n%s", err, doc)
	}
	if !reflect.DeepEqual(got, d) {
		t.Errorf("round trip: got %+v, want %+v", got, d)
	}
	// No peer key, no authorized keys: the entries are left out.
	d2 := NodeData{Hostname: d.Hostname, HostKeyPrivate: d.HostKeyPrivate, HostKeyPublic: d.HostKeyPublic}
	doc, err = Render(d2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(doc, "write_files") {
		t.Errorf("write_files with nothing to write:\n%s", doc)
	}
	if got, err := Parse([]byte(doc)); err != nil || !reflect.DeepEqual(got, d2) {
		t.Errorf("round trip without files: %+v, %v", got, err)
	}
}

// TestParseRefuses: every way out of the subset is refused, naming it.
func TestParseRefuses(t *testing.T) {
	d := testData(t)
	good, err := Render(d)
	if err != nil {
		t.Fatal(err)
	}
	operator, _, _ := NewHostKey()
	operatorLine := pubLine(t, operator) + " operator"
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecBlock, _ := ssh.MarshalPrivateKey(ecKey, "")
	ecPEM := string(pem.EncodeToMemory(ecBlock))
	otherPriv, _, _ := NewHostKey()
	// withKeys is good with the authorized_keys content replaced.
	withKeys := func(lines ...string) string {
		content := "      " + strings.Join(d.AuthorizedKeys, "\n      ") + "\n"
		if !strings.Contains(good, content) {
			t.Fatalf("no %q in\n%s", content, good)
		}
		return strings.Replace(good, content, "      "+strings.Join(lines, "\n      ")+"\n", 1)
	}
	indent := func(s string) string {
		return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ") + "\n"
	}
	hostKeys := func(priv, pub string) string {
		return "#cloud-config\nhostname: a\nssh_keys:\n  ed25519_private: |\n" + indent(priv) + "  ed25519_public: " + pub + "\n"
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"no header", strings.TrimPrefix(good, "#cloud-config\n"), "first line"},
		{"shell script", "#!/bin/sh\nrm -rf /\n", "first line"},
		{"include", "#include\nhttp://example.com/x\n", "first line"},
		{"too big", good + "#" + strings.Repeat("x", MaxSize), "more than"},
		{"runcmd", good + "runcmd:\n  - [sh, -c, id]\n", `key "runcmd"`},
		{"bootcmd", good + "bootcmd:\n  - id\n", `key "bootcmd"`},
		{"users", good + "users:\n  - name: evil\n", `key "users"`},
		{"ssh_authorized_keys", good + "ssh_authorized_keys:\n  - " + operatorLine + "\n", `key "ssh_authorized_keys"`},
		{"duplicate key", good + "hostname: other\n", "twice"},
		{"not a map", "#cloud-config\n- a\n", "want a map"},
		{"no hostname", strings.Replace(good, "hostname: 'web-3'\n", "", 1), "no hostname"},
		{"bad hostname", strings.Replace(good, "hostname: 'web-3'", "hostname: Web_3;rm", 1), "hostname"},
		{"hostname not a string", strings.Replace(good, "hostname: 'web-3'", "hostname: 12", 1), "want a str"},
		{"no ssh_keys", "#cloud-config\nhostname: a\n", "no ssh_keys"},
		{"other path", strings.Replace(good, "path: '/etc/moat/peer_ed25519'", "path: /etc/moat/allowed_signers", 1), `"/etc/moat/allowed_signers"`},
		{"encoding", strings.Replace(good, "  - path: '/etc/moat/peer_ed25519'\n", "  - path: /etc/moat/peer_ed25519\n    encoding: b64\n", 1), "encoding"},
		{"owner", strings.Replace(good, "  - path: '/etc/moat/peer_ed25519'\n", "  - path: /etc/moat/peer_ed25519\n    owner: nobody:nogroup\n", 1), "owner"},
		{"permissions", strings.Replace(good, "permissions: '0600'", "permissions: '0644'", 1), "0644"},
		{"octal permissions", strings.Replace(good, "permissions: '0600'", "permissions: 0600", 1), "want a str"},
		{"no append", strings.Replace(good, "    append: true\n", "", 1), "append: true"},
		{"append false", strings.Replace(good, "append: true", "append: false", 1), "append: true"},
		{"two authorized_keys", strings.Replace(good, "path: '/etc/moat/peer_ed25519'", "path: '/root/.ssh/authorized_keys'", 1), "second time"},
		{"unpinned key", withKeys(operatorLine), "not pinned"},
		{"root gate", withKeys(nodeapi.AuthorizedLine(nodeapi.BinaryPath, nodeapi.RoleRoot, pubLine(t, operator))), "not pinned"},
		{"no restrict", withKeys(`command="/usr/local/bin/moat gate --as master" ` + pubLine(t, operator) + " moat-master"), "not pinned"},
		{"more options", withKeys(`restrict,command="/usr/local/bin/moat gate --as master" `+pubLine(t, operator)+` moat-master`,
			`restrict,command="/usr/local/bin/moat gate --as master",port-forwarding `+pubLine(t, operator)), "line 2"},
		{"other binary", withKeys(`restrict,command="/tmp/moat gate --as master" ` + pubLine(t, operator) + " moat-master"), "not pinned"},
		{"wrong comment", withKeys(`restrict,command="/usr/local/bin/moat gate --as master" ` + pubLine(t, operator) + " x"), "comment"},
		{"blank line", withKeys(d.AuthorizedKeys[0], "", d.AuthorizedKeys[1]), "line 2"},
		{"anchor", strings.Replace(good, "hostname: 'web-3'", "hostname: &h web-3\nx: *h", 1), "anchors"},
		{"tag", strings.Replace(good, "hostname: 'web-3'", "hostname: !!binary d2ViLTM=", 1), "hostname"},
		{"merge key", strings.Replace(good, "ssh_keys:\n", "ssh_keys:\n  <<: {}\n", 1), "merge"},
		{"dsa host key", strings.Replace(good, "ed25519_public:", "dsa_public:", 1), "dsa_public"},
		{"ecdsa private", hostKeys(ecPEM, d.HostKeyPublic), "ed25519 key"},
		{"mismatched halves", hostKeys(otherPriv, d.HostKeyPublic), "not the public half"},
		{"junk after PEM", hostKeys(d.HostKeyPrivate+"junk\n", d.HostKeyPublic), "exactly one PEM block"},
		{"public key of another type", hostKeys(d.HostKeyPrivate, pubLine(t, ecPEM)), "ssh-ed25519"},
		{"bad peer key", good[:strings.LastIndex(good, "-----BEGIN")] + "-----BEGIN GARBAGE" + good[strings.LastIndex(good, "-----BEGIN")+len("-----BEGIN OPENSSH PRIVATE KEY"):], "peer_ed25519"},
		{"two documents", good + "---\nruncmd: [id]\n", "YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.doc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
	// ParseStock takes the operator's key; the rest of the subset holds.
	stock := withKeys(operatorLine)
	if got, err := ParseStock([]byte(stock)); err != nil || got.AuthorizedKeys[0] != operatorLine {
		t.Errorf("ParseStock of an operator's key: %+v, %v", got, err)
	}
	if _, err := ParseStock([]byte(good + "runcmd:\n  - id\n")); err == nil {
		t.Error("ParseStock accepted runcmd")
	}
}

func TestApply(t *testing.T) {
	root := t.TempDir()
	d := testData(t)
	sshDir := filepath.Join(root, "etc/ssh")
	os.MkdirAll(sshDir, 0o755)
	os.MkdirAll(filepath.Join(root, "root/.ssh"), 0o700)
	for _, f := range []string{"ssh_host_rsa_key", "ssh_host_rsa_key.pub", "ssh_host_ed25519_key-cert.pub", "sshd_config"} {
		os.WriteFile(filepath.Join(sshDir, f), []byte("old\n"), 0o600)
	}
	os.WriteFile(filepath.Join(root, "root/.ssh/authorized_keys"), []byte("ssh-ed25519 AAAA operator"), 0o600)
	if err := Apply(root, d); err != nil {
		t.Fatal(err)
	}
	if err := Apply(root, d); err != nil { // twice: nothing doubles
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(sshDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "sshd_config"}; !reflect.DeepEqual(names, want) {
		t.Errorf("/etc/ssh holds %v, want %v", names, want)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("etc/ssh/ssh_host_ed25519_key"); got != d.HostKeyPrivate {
		t.Errorf("host key %q", got)
	}
	if got, want := read("root/.ssh/authorized_keys"), "ssh-ed25519 AAAA operator\n"+strings.Join(d.AuthorizedKeys, "\n")+"\n"; got != want {
		t.Errorf("authorized_keys:\n%s\nwant:\n%s", got, want)
	}
	fp, _ := d.Fingerprint()
	if got := read("etc/moat/hostkey.onetime"); got != fp+"\n" || !strings.HasPrefix(fp, "SHA256:") {
		t.Errorf("hostkey.onetime %q, want %q", got, fp)
	}
	if got := read("etc/hostname"); got != "web-3\n" {
		t.Errorf("hostname %q", got)
	}
	for p, mode := range map[string]os.FileMode{"etc/moat/peer_ed25519": 0o600, "etc/ssh/ssh_host_ed25519_key": 0o600, "root/.ssh/authorized_keys": 0o600} {
		if st, err := os.Stat(filepath.Join(root, p)); err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want %v", p, st.Mode(), err, mode)
		}
	}
	if leftover, _ := filepath.Glob(filepath.Join(root, "*/*/*.moat-tmp")); len(leftover) > 0 {
		t.Errorf("temporary files left: %v", leftover)
	}
}

// FuzzParse: whatever Parse accepts, Render writes back to a document
// Parse reads as the same data.
func FuzzParse(f *testing.F) {
	d := testData(f)
	good, _ := Render(d)
	f.Add([]byte(good))
	f.Add([]byte(good + "runcmd: [id]\n"))
	f.Add([]byte("#cloud-config\nhostname: a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range []struct {
			parse  func([]byte) (NodeData, error)
			render func(NodeData) (string, error)
		}{{Parse, Render}, {ParseStock, RenderStock}} {
			parse, render := p.parse, p.render
			got, err := parse(data)
			if err != nil {
				continue
			}
			doc, err := render(got)
			if err != nil {
				t.Fatalf("render what parse accepted: %v", err)
			}
			again, err := parse([]byte(doc))
			if err != nil {
				t.Fatalf("parse what render made: %v\n%s", err, doc)
			}
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip: %+v != %+v", again, got)
			}
		}
	})
}

// TestRenderForYAML11: cloud-init reads YAML 1.1, where a plain on, yes,
// no or 017 is not a string: every value Render writes but append's
// boolean is quoted or a literal block, so a stock cloud-init reads the
// same document Parse does.
func TestRenderForYAML11(t *testing.T) {
	for _, host := range []string{"on", "yes", "no", "off", "y", "null", "12", "017", "0x1f", "1e3", "web-1"} {
		d := testData(t)
		d.Hostname = host
		doc, err := Render(d)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		var root yaml.Node
		if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
			t.Fatal(err)
		}
		var walk func(n *yaml.Node, key bool)
		walk = func(n *yaml.Node, key bool) {
			switch n.Kind {
			case yaml.DocumentNode, yaml.SequenceNode:
				for _, c := range n.Content {
					walk(c, false)
				}
			case yaml.MappingNode:
				for i, c := range n.Content {
					walk(c, i%2 == 0)
				}
			case yaml.ScalarNode:
				quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle) != 0
				if !key && !quoted && n.Tag != "!!bool" {
					t.Errorf("hostname %s: plain value %q (line %d)", host, n.Value, n.Line)
				}
			}
		}
		walk(&root, false)
		if got, err := Parse([]byte(doc)); err != nil || got.Hostname != host {
			t.Errorf("%s: parsed %q, %v", host, got.Hostname, err)
		}
	}
}
