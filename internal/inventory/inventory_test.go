package inventory

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

func TestStore(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if nodes, err := s.List(); err != nil || len(nodes) != 0 {
		t.Fatalf("empty inventory: %v %v", nodes, err)
	}
	// Concurrent enrolments do not lose each other's writes.
	var wg sync.WaitGroup
	for _, name := range []string{"c", "a", "b", "d", "e"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Put(Node{Name: name, Addr: name + ":22"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	nodes, _ := s.List()
	if len(nodes) != 5 || nodes[0].Name != "a" || nodes[4].Name != "e" {
		t.Fatalf("after 5 puts: %+v", nodes)
	}
	if err := s.Put(Node{Name: "a", Addr: "new:22"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Get("a"); n.Addr != "new:22" {
		t.Errorf("put replaces: got %+v", n)
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("a"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("get a deleted node: %v", err)
	}
	k1, err := s.MasterKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := s.MasterKey()
	if string(k1.PublicKey().Marshal()) != string(k2.PublicKey().Marshal()) {
		t.Error("the master key changed between loads")
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
