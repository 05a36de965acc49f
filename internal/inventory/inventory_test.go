package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLegacy(t *testing.T) {
	dir := t.TempDir()
	if nodes, err := Legacy(dir); err != nil || len(nodes) != 0 {
		t.Fatalf("no nodes.json: %v %v", nodes, err)
	}
	path := filepath.Join(dir, LegacyFile)
	os.WriteFile(path, []byte(`[{"name":"a","addr":"a:22","operator":{"dest":"root@a"}}]`), 0o600)
	nodes, err := Legacy(dir)
	if err != nil || len(nodes) != 1 || nodes[0].Addr != "a:22" || nodes[0].Operator.Dest != "root@a" {
		t.Fatalf("one node: %+v %v", nodes, err)
	}
	os.WriteFile(path, []byte(`[{"name":`), 0o600)
	if _, err := Legacy(dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("a torn nodes.json must name the file: %v", err)
	}
}

func TestAccessValidate(t *testing.T) {
	good := []Access{
		{Dest: "root@203.0.113.7"}, {Dest: "n1", SSHConfig: "/var/lib/moat-dev/ssh_config"},
		{Dest: "ops@[2001:db8::1]", Port: 2222, Jump: "admin@bastion:22,root@10.0.0.1", Identity: "/root/.ssh/ops"},
	}
	for _, a := range good {
		if err := a.Validate(); err != nil {
			t.Errorf("%+v: %v", a, err)
		}
	}
	bad := []Access{
		{}, {Dest: "-oProxyCommand=sh -c id"}, {Dest: "root@host -v"}, {Dest: "root@host;id"},
		{Dest: "n1", Jump: "-oProxyCommand=x"}, {Dest: "n1", Jump: "a b"}, {Dest: "n1", Port: -1},
		{Dest: "n1", Identity: "relative/key"}, {Dest: "n1", SSHConfig: "/x/../etc/cfg"}, {Dest: "n1", SSHConfig: "/tmp/%d"},
	}
	for _, a := range bad {
		if err := a.Validate(); err == nil {
			t.Errorf("%+v: accepted", a)
		}
	}
}

// FuzzAccessValidate: what the master hands back as a node's operator
// access, once valid, can only be read by ssh as a destination, a jump
// host list and paths: never an option, never two words.
func FuzzAccessValidate(f *testing.F) {
	f.Add("root@h", "", "", "", 22)
	f.Add("-oProxyCommand=id", "j", "/k", "/c", 0)
	f.Fuzz(func(t *testing.T, dest, jump, identity, config string, port int) {
		a := Access{Dest: dest, Jump: jump, Identity: identity, SSHConfig: config, Port: port}
		if a.Validate() != nil {
			return
		}
		for _, s := range []string{dest, jump} {
			if strings.HasPrefix(s, "-") || strings.ContainsAny(s, " \t\n\x00;$`'\"|&<>") {
				t.Fatalf("accepted %q", s)
			}
		}
		for _, p := range []string{identity, config} {
			if p != "" && (!strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\n\x00%")) {
				t.Fatalf("accepted path %q", p)
			}
		}
	})
}
