// Package cloudinit is the user data a pool node is born with: a
// #cloud-config document carrying only its hostname, a one-time ed25519
// host key, authorized_keys lines and the cluster's peer key. The master
// renders it (Render); the node's `moat node firstboot` reads it with
// Parse, which accepts exactly that subset — every authorized key pinned
// to `moat gate --as master|peer` — and refuses everything else, naming
// it, so a master cannot hand a node a signing policy, an operator key or
// a command to run: those come only from the operator's image. ParseStock
// is what a stock cloud-init makes of the same shape with any key (the
// operator's builder server), and Apply writes a parsed document to disk.
package cloudinit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
)

// MaxSize is the largest user data accepted (DigitalOcean and Hetzner
// take at most 64 KiB, and the subset here needs a few).
const MaxSize = 64 << 10

// Header is the first line of every document: cloud-init reads a
// #cloud-config document only with it.
const Header = "#cloud-config"

// The files the document writes, as cloud-init's write_files names them.
const (
	AuthorizedKeysPath = nodeapi.AuthorizedKeys // /root/.ssh/authorized_keys
	PeerKeyPath        = nodeapi.PeerKey        // /etc/moat/peer_ed25519
)

// NodeData is what a node is given at birth.
type NodeData struct {
	Hostname string
	// The one-time host key: OpenSSH private key PEM, and its public half
	// in authorized_keys form ("ssh-ed25519 AAAA...").
	HostKeyPrivate, HostKeyPublic string
	// AuthorizedKeys are lines appended to root's authorized_keys.
	AuthorizedKeys []string
	// PeerKey is the cluster's peer key (OpenSSH private key PEM), empty
	// for none.
	PeerKey []byte
}

// NewHostKey makes a one-time ed25519 host key in the forms NodeData holds.
func NewHostKey() (private, public string, err error) {
	priv, pub, err := sshkey.NewKey("")
	if err != nil {
		return "", "", err
	}
	return string(priv), sshkey.AuthorizedKey(pub), nil
}

// Fingerprint is the SHA256 fingerprint of the host key's public half.
func (d NodeData) Fingerprint() (string, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d.HostKeyPublic))
	if err != nil {
		return "", fmt.Errorf("host key: %w", err)
	}
	return ssh.FingerprintSHA256(key), nil
}

// Render makes the #cloud-config document. It checks d as Parse would
// (strictly: every authorized key pinned to the gate), so what it renders
// a node accepts.
func Render(d NodeData) (string, error) {
	if err := check(d, true); err != nil {
		return "", err
	}
	return render(d)
}

// RenderStock is Render for a builder server's user data: any authorized
// key (the operator's).
func RenderStock(d NodeData) (string, error) {
	if err := check(d, false); err != nil {
		return "", err
	}
	return render(d)
}

func render(d NodeData) (string, error) {
	str := func(s string) *yaml.Node {
		// Quoted: cloud-init's YAML is 1.1, where a plain on, yes or no
		// is a boolean.
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.SingleQuotedStyle}
		if strings.Contains(s, "\n") {
			n.Style = yaml.LiteralStyle
		}
		return n
	}
	mapping := func(kv ...any) *yaml.Node {
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i := 0; i < len(kv); i += 2 {
			v, ok := kv[i+1].(*yaml.Node)
			if !ok {
				v = str(kv[i+1].(string))
			}
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv[i].(string)}
			m.Content = append(m.Content, key, v)
		}
		return m
	}
	files := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	if len(d.AuthorizedKeys) > 0 {
		files.Content = append(files.Content, mapping(
			"path", AuthorizedKeysPath,
			"append", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"},
			"permissions", "0600",
			"content", strings.Join(d.AuthorizedKeys, "\n")+"\n"))
	}
	if len(d.PeerKey) > 0 {
		files.Content = append(files.Content, mapping(
			"path", PeerKeyPath,
			"permissions", "0600",
			"content", string(d.PeerKey)))
	}
	kv := []any{"hostname", d.Hostname,
		"ssh_keys", mapping("ed25519_private", d.HostKeyPrivate, "ed25519_public", d.HostKeyPublic)}
	if len(files.Content) > 0 {
		kv = append(kv, "write_files", files)
	}
	var buf bytes.Buffer
	buf.WriteString(Header + "\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(mapping(kv...)); err != nil {
		return "", fmt.Errorf("render user data: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("render user data: %w", err)
	}
	if buf.Len() > MaxSize {
		return "", fmt.Errorf("render user data: %d bytes, more than the %d a cloud takes", buf.Len(), MaxSize)
	}
	return buf.String(), nil
}

// Parse reads a master's user data, strictly: the keys Render writes and
// nothing else, every authorized key pinned to `moat gate --as master` or
// `--as peer` with restrict. The error names what it refused and where.
func Parse(data []byte) (NodeData, error) { return parse(data, true) }

// ParseStock reads the same shape with any authorized key: what a stock
// cloud-init base image does with the operator's user data for a builder
// server.
func ParseStock(data []byte) (NodeData, error) { return parse(data, false) }

func parse(data []byte, pinned bool) (NodeData, error) {
	var d NodeData
	if len(data) > MaxSize {
		return d, fmt.Errorf("user data: %d bytes, more than %d", len(data), MaxSize)
	}
	first, _, _ := bytes.Cut(data, []byte("\n"))
	if string(bytes.TrimRight(first, "\r")) != Header {
		return d, fmt.Errorf("user data: the first line is not %q (scripts, MIME multipart, gzip and includes are refused)", Header)
	}
	var doc, more yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return d, fmt.Errorf("user data: %w", err)
	}
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return d, errors.New("user data: more than one YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return d, errors.New("user data: not one YAML document")
	}
	top := doc.Content[0]
	if err := plain(top, yaml.MappingNode, "!!map", "the document"); err != nil {
		return d, err
	}
	var hasHost, hasKeys bool
	err := eachKey(top, "the document", func(key string, v *yaml.Node) error {
		switch key {
		case "hostname":
			hasHost = true
			s, err := scalar(v, "hostname")
			d.Hostname = s
			return err
		case "ssh_keys":
			hasKeys = true
			return parseSSHKeys(v, &d)
		case "write_files":
			return parseFiles(v, &d, pinned)
		}
		return fmt.Errorf("user data: key %q (line %d) is not accepted: only hostname, ssh_keys and write_files are", key, v.Line)
	})
	if err != nil {
		return NodeData{}, err
	}
	if !hasHost {
		return NodeData{}, errors.New("user data: no hostname")
	}
	if !hasKeys {
		return NodeData{}, errors.New("user data: no ssh_keys (the one-time host key)")
	}
	if err := check(d, pinned); err != nil {
		return NodeData{}, err
	}
	return d, nil
}

func parseSSHKeys(v *yaml.Node, d *NodeData) error {
	if err := plain(v, yaml.MappingNode, "!!map", "ssh_keys"); err != nil {
		return err
	}
	var priv, pub bool
	err := eachKey(v, "ssh_keys", func(key string, v *yaml.Node) error {
		var err error
		switch key {
		case "ed25519_private":
			priv = true
			d.HostKeyPrivate, err = scalar(v, "ssh_keys.ed25519_private")
		case "ed25519_public":
			pub = true
			d.HostKeyPublic, err = scalar(v, "ssh_keys.ed25519_public")
		default:
			err = fmt.Errorf("user data: ssh_keys.%s (line %d) is not accepted: only an ed25519 host key is", key, v.Line)
		}
		return err
	})
	if err != nil {
		return err
	}
	if !priv || !pub {
		return errors.New("user data: ssh_keys needs both ed25519_private and ed25519_public")
	}
	return nil
}

func parseFiles(v *yaml.Node, d *NodeData, pinned bool) error {
	if err := plain(v, yaml.SequenceNode, "!!seq", "write_files"); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, f := range v.Content {
		where := fmt.Sprintf("write_files[%d]", i)
		if err := plain(f, yaml.MappingNode, "!!map", where); err != nil {
			return err
		}
		fields := map[string]*yaml.Node{}
		err := eachKey(f, where, func(key string, v *yaml.Node) error {
			switch key {
			case "path", "content", "permissions", "append":
				fields[key] = v
				return nil
			}
			return fmt.Errorf("user data: %s.%s (line %d) is not accepted: only path, content, permissions and append are", where, key, v.Line)
		})
		if err != nil {
			return err
		}
		for _, k := range []string{"path", "content", "permissions"} {
			if fields[k] == nil {
				return fmt.Errorf("user data: %s has no %s", where, k)
			}
		}
		path, err := scalar(fields["path"], where+".path")
		if err != nil {
			return err
		}
		if perm, err := scalar(fields["permissions"], where+".permissions"); err != nil {
			return err
		} else if perm != "0600" {
			return fmt.Errorf("user data: %s.permissions (line %d) is %q, want '0600'", where, fields["permissions"].Line, perm)
		}
		content, err := scalar(fields["content"], where+".content")
		if err != nil {
			return err
		}
		if seen[path] {
			return fmt.Errorf("user data: %s writes %s a second time", where, path)
		}
		seen[path] = true
		switch path {
		case AuthorizedKeysPath:
			a := fields["append"]
			if a == nil || a.Kind != yaml.ScalarNode || a.Tag != "!!bool" || a.Value != "true" || a.Anchor != "" {
				return fmt.Errorf("user data: %s (%s) must have append: true", where, path)
			}
			if content == "" || !strings.HasSuffix(content, "\n") {
				return fmt.Errorf("user data: %s content (line %d): authorized_keys lines must each end with a newline", where, fields["content"].Line)
			}
			d.AuthorizedKeys = strings.Split(strings.TrimSuffix(content, "\n"), "\n")
		case PeerKeyPath:
			if fields["append"] != nil {
				return fmt.Errorf("user data: %s (%s) must not append", where, path)
			}
			d.PeerKey = []byte(content)
		default:
			return fmt.Errorf("user data: %s writes %q (line %d): only %s and %s may be written", where, path, fields["path"].Line, AuthorizedKeysPath, PeerKeyPath)
		}
	}
	return nil
}

// plain checks a node's kind and tag, refusing anchors, aliases and
// explicit tags (!!binary and the like).
func plain(n *yaml.Node, kind yaml.Kind, tag, where string) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return fmt.Errorf("user data: %s (line %d): anchors and aliases are not accepted", where, n.Line)
	}
	if n.Kind != kind || n.Tag != tag {
		return fmt.Errorf("user data: %s (line %d): want a %s, got %s", where, n.Line, strings.TrimPrefix(tag, "!!"), describe(n))
	}
	if n.Style&yaml.TaggedStyle != 0 {
		return fmt.Errorf("user data: %s (line %d): explicit tags are not accepted", where, n.Line)
	}
	return nil
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strings.TrimPrefix(n.Tag, "!!") + " " + fmt.Sprintf("%.20q", n.Value)
	}
	return "something else"
}

// scalar is a string value.
func scalar(n *yaml.Node, where string) (string, error) {
	if err := plain(n, yaml.ScalarNode, "!!str", where); err != nil {
		return "", err
	}
	return n.Value, nil
}

// eachKey walks a mapping's keys, refusing non-string and repeated keys
// and merge keys.
func eachKey(m *yaml.Node, where string, f func(key string, v *yaml.Node) error) error {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key, err := scalar(k, "a key of "+where)
		if err != nil {
			return err
		}
		if seen[key] {
			return fmt.Errorf("user data: %s has key %q twice (line %d)", where, key, k.Line)
		}
		seen[key] = true
		if err := f(key, v); err != nil {
			return err
		}
	}
	return nil
}

var (
	hostnameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
	commentRE  = regexp.MustCompile(`^[A-Za-z0-9@._+:=-]{1,64}$`)
)

// check is what Parse and Render demand of NodeData beyond the shape.
func check(d NodeData, pinned bool) error {
	if len(d.Hostname) > 63 || !hostnameRE.MatchString(d.Hostname) {
		return fmt.Errorf("user data: hostname %q: want lowercase letters, digits, dashes and dots, at most 63", d.Hostname)
	}
	if err := checkHostKey(d.HostKeyPrivate, d.HostKeyPublic); err != nil {
		return fmt.Errorf("user data: ssh_keys: %w", err)
	}
	if len(d.AuthorizedKeys) > 32 {
		return fmt.Errorf("user data: %d authorized keys, at most 32", len(d.AuthorizedKeys))
	}
	for i, line := range d.AuthorizedKeys {
		var err error
		if pinned {
			err = checkPinned(line)
		} else {
			err = checkAuthorized(line)
		}
		if err != nil {
			return fmt.Errorf("user data: %s line %d: %w", AuthorizedKeysPath, i+1, err)
		}
	}
	if len(d.PeerKey) > 0 {
		if _, err := parseEd25519(string(d.PeerKey)); err != nil {
			return fmt.Errorf("user data: %s: %w", PeerKeyPath, err)
		}
	}
	return nil
}

// parseEd25519 parses an OpenSSH ed25519 private key written exactly as
// one PEM block, nothing before or after it.
func parseEd25519(s string) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	if len(rest) > 0 || string(pem.EncodeToMemory(block)) != s {
		return nil, errors.New("not exactly one PEM block: something before or after it, or its lines wrapped otherwise")
	}
	if len(block.Headers) > 0 {
		return nil, errors.New("PEM headers (an encrypted key?) are not accepted")
	}
	key, err := ssh.ParseRawPrivateKey([]byte(s))
	if err != nil {
		return nil, err
	}
	priv, ok := key.(*ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an ed25519 key", key)
	}
	return *priv, nil
}

func checkHostKey(private, public string) error {
	priv, err := parseEd25519(private)
	if err != nil {
		return fmt.Errorf("ed25519_private: %w", err)
	}
	fields := strings.Fields(public)
	if strings.Join(fields, " ") != public || len(fields) < 2 || len(fields) > 3 || (len(fields) == 3 && !commentRE.MatchString(fields[2])) {
		return errors.New("ed25519_public: want \"ssh-ed25519 KEY [COMMENT]\" on one line")
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(public))
	if err != nil {
		return fmt.Errorf("ed25519_public: %w", err)
	}
	if pub.Type() != ssh.KeyAlgoED25519 || fields[0] != ssh.KeyAlgoED25519 {
		return fmt.Errorf("ed25519_public: a %s key, want ssh-ed25519", pub.Type())
	}
	want, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return err
	}
	if !bytes.Equal(want.Marshal(), pub.Marshal()) {
		return errors.New("ed25519_public is not the public half of ed25519_private")
	}
	return nil
}

// checkPinned accepts exactly nodeapi.AuthorizedLine for the master or
// the peer role.
func checkPinned(line string) error {
	for _, role := range []string{nodeapi.RoleMaster, nodeapi.RolePeer} {
		prefix := fmt.Sprintf(`restrict,command="%s gate --as %s" `, nodeapi.BinaryPath, role)
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		suffix := " " + nodeapi.KeyComment(role)
		key, ok := strings.CutSuffix(rest, suffix)
		if !ok {
			return fmt.Errorf("want the comment %q", nodeapi.KeyComment(role))
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
		if err != nil {
			return err
		}
		canon := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
		if canon != key {
			return errors.New("the key is not written as \"TYPE BASE64\"")
		}
		if strings.Contains(pub.Type(), "cert") {
			return errors.New("certificates are not accepted")
		}
		if nodeapi.AuthorizedLine(nodeapi.BinaryPath, role, key) != line {
			return errors.New("not moat's pinned line")
		}
		return nil
	}
	return fmt.Errorf("not pinned: only restrict,command=\"%s gate --as master|peer\" keys are accepted", nodeapi.BinaryPath)
}

// checkAuthorized accepts any one authorized_keys line.
func checkAuthorized(line string) error {
	if strings.ContainsAny(line, "\r\x00") {
		return errors.New("control characters")
	}
	_, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return errors.New("more than one key on the line")
	}
	return nil
}
