package master

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/userauth"
)

// usersMaster is a master with its store and index, and nothing else.
func usersMaster(t *testing.T) *Master {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := &Master{cfg: Config{UserCAFile: filepath.Join(dir, "user_ca_keys")}, log: slog.New(slog.DiscardHandler), db: db}
	if err := m.loadIdentities(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func signer(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func session(key ssh.PublicKey, user string) userauth.Preamble {
	return userauth.Preamble{Kind: userauth.KindSession, User: user, Auth: "publickey " + userauth.KeyText(key) + "\n"}
}

func TestResolveSession(t *testing.T) {
	m := usersMaster(t)
	ctx := context.Background()
	alice, bob, stranger := signer(t), signer(t), signer(t)
	for name, k := range map[string]ssh.Signer{"alice": alice, "bob": bob} {
		if _, err := m.AddUser(ctx, masterapi.NewUser{Name: name, Keys: []string{sshkey.AuthorizedKey(k.PublicKey())},
			Roles: []masterapi.Role{{Role: "viewer", Tenant: "shop"}}}, "root"); err != nil {
			t.Fatal(err)
		}
	}
	id, err := m.resolveSession(session(alice.PublicKey(), "alice"))
	if err != nil || id.caller.User != "alice" || id.caller.Credential != ssh.FingerprintSHA256(alice.PublicKey()) {
		t.Fatalf("alice: %+v %v", id, err)
	}
	if ts := m.UserTenants("alice"); len(ts) != 1 || ts[0] != "shop" {
		t.Fatalf("alice's tenants: %v", ts)
	}
	for name, p := range map[string]userauth.Preamble{
		"a stranger's key":         session(stranger.PublicKey(), ""),
		"alice's key claiming bob": session(alice.PublicKey(), "bob"),
		"two keys":                 {Kind: userauth.KindSession, Auth: "publickey " + userauth.KeyText(alice.PublicKey()) + "\npublickey " + userauth.KeyText(bob.PublicKey())},
		"a password login":         {Kind: userauth.KindSession, Auth: "password\n"},
	} {
		if _, err := m.resolveSession(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Keys lookups answer the owner, and nothing for a stranger.
	g, err := m.lookup(userauth.Preamble{Kind: userauth.KindKeys, Key: userauth.KeyText(bob.PublicKey())})
	if err != nil || len(g) != 1 || g[0].User != "bob" {
		t.Fatalf("bob's key: %v %v", g, err)
	}
	if g, err := m.lookup(userauth.Preamble{Kind: userauth.KindKeys, Key: userauth.KeyText(stranger.PublicKey())}); err != nil || len(g) != 0 {
		t.Fatalf("a stranger's key: %v %v", g, err)
	}
	// Removing bob ends his sessions and none of alice's.
	ss := &m.sessions
	aliceConn, _ := net.Pipe()
	bobConn, bobPeer := net.Pipe()
	aid, _ := m.resolveSession(session(alice.PublicKey(), ""))
	bid, _ := m.resolveSession(session(bob.PublicKey(), ""))
	as := &apiSession{Conn: aliceConn, r: bufio.NewReader(aliceConn), id: aid, preamble: session(alice.PublicKey(), ""), sessions: ss}
	bs := &apiSession{Conn: bobConn, r: bufio.NewReader(bobConn), id: bid, preamble: session(bob.PublicKey(), ""), sessions: ss}
	ss.add(as)
	ss.add(bs)
	if err := m.RemoveUser(ctx, "bob", "root"); err != nil {
		t.Fatal(err)
	}
	bobPeer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bobPeer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("bob's session after he was removed: %v, want EOF", err)
	}
	if n := m.sessions.count(); n != 1 {
		t.Fatalf("%d sessions left, want alice's", n)
	}
	if _, err := m.resolveSession(session(bob.PublicKey(), "")); err == nil {
		t.Fatal("a removed user's key still resolves")
	}
}

func TestResolveCertificate(t *testing.T) {
	m := usersMaster(t)
	ctx := context.Background()
	ca, other := signer(t), signer(t)
	if _, err := m.TrustCA(ctx, masterapi.TrustCARequest{Name: "corp", Key: sshkey.AuthorizedKey(ca.PublicKey())}, "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddUser(ctx, masterapi.NewUser{Name: "carol"}, "root"); err != nil { // principal: her name
		t.Fatal(err)
	}
	if _, err := m.AddUser(ctx, masterapi.NewUser{Name: "dave", Principals: []string{"d.x"}}, "root"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert := func(by ssh.Signer, principals []string, after, before time.Time) userauth.Preamble {
		c := &ssh.Certificate{Key: signer(t).PublicKey(), Serial: 9, CertType: ssh.UserCert, KeyId: "carol@laptop",
			ValidPrincipals: principals, ValidAfter: uint64(after.Unix()), ValidBefore: uint64(before.Unix())}
		if err := c.SignCert(rand.Reader, by); err != nil {
			t.Fatal(err)
		}
		return session(c, "")
	}
	good := cert(ca, []string{"carol"}, now.Add(-time.Minute), now.Add(time.Hour))
	id, err := m.resolveSession(good)
	if err != nil || id.caller.User != "carol" || !strings.HasPrefix(id.caller.Credential, `cert "carol@laptop" serial 9 from CA SHA256:`) || id.expires.IsZero() {
		t.Fatalf("a good certificate: %+v %v", id, err)
	}
	for name, p := range map[string]userauth.Preamble{
		"expired":               cert(ca, []string{"carol"}, now.Add(-2*time.Hour), now.Add(-time.Hour)),
		"another CA":            cert(other, []string{"carol"}, now.Add(-time.Minute), now.Add(time.Hour)),
		"no user's principal":   cert(ca, []string{"root"}, now.Add(-time.Minute), now.Add(time.Hour)),
		"two users' principals": cert(ca, []string{"carol", "d.x"}, now.Add(-time.Minute), now.Add(time.Hour)),
	} {
		if _, err := m.resolveSession(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	key := strings.TrimPrefix(strings.TrimSpace(good.Auth), "publickey ")
	g, err := m.lookup(userauth.Preamble{Kind: userauth.KindPrincipals, Key: key})
	if err != nil || len(g) != 1 || g[0] != (userauth.Grant{User: "carol", Principal: "carol"}) {
		t.Fatalf("principals of a good certificate: %v %v", g, err)
	}
	if g, _ := m.lookup(userauth.Preamble{Kind: userauth.KindKeys, Key: key}); len(g) != 0 {
		t.Fatalf("a certificate answered as a plain key: %v", g)
	}
	if err := m.UntrustCA(ctx, "corp", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.resolveSession(good); err == nil {
		t.Fatal("a certificate of an untrusted CA resolves")
	}
}

// The api socket serves only the uids it allows (SO_PEERCRED), whatever
// the socket file's mode lets connect.
func TestAPISocketPeerCredentials(t *testing.T) {
	m := usersMaster(t)
	path := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		allowed map[uint32]bool
		served  bool
	}{
		{map[uint32]bool{}, false},
		{map[uint32]bool{uint32(getuid()): true}, true},
	} {
		l := &apiListener{m: m, allowed: tc.allowed, conns: make(chan net.Conn), done: make(chan struct{})}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				l.admit(c)
			}
		}()
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		userauth.WritePreamble(c, userauth.Preamble{Kind: userauth.KindKeys, Key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIBq0hVlzBBwhJNzGCNQyg8EzMs8ebDXyS3VpmjRAkG9"})
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var ans userauth.Answer
		err = json.NewDecoder(c).Decode(&ans)
		c.Close()
		if served := err == nil; served != tc.served {
			t.Errorf("allowed %v: served %v (%v)", tc.allowed, served, err)
		}
	}
}

func getuid() int { return syscall.Getuid() }

// TestIndexKeepsConcurrentAdds: users added while others are removed all
// stay in the index. (A rebuild that read the store before an add must not
// swap in an index without it: that window is too narrow to hit at will,
// so this shows only that concurrent changes are safe.)
func TestIndexKeepsConcurrentAdds(t *testing.T) {
	m := usersMaster(t)
	ctx := context.Background()
	add := func(name string) ssh.Signer {
		k := signer(t)
		if _, err := m.AddUser(ctx, masterapi.NewUser{Name: name, Keys: []string{sshkey.AuthorizedKey(k.PublicKey())}}, "root"); err != nil {
			t.Error(err)
		}
		return k
	}
	const old, n = 200, 100
	for i := range old {
		add(fmt.Sprintf("old%04d", i))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if err := m.RemoveUser(ctx, fmt.Sprintf("old%04d", i), "root"); err != nil {
				t.Error(err)
			}
		}
	}()
	keys := map[string]ssh.Signer{}
	for i := range n {
		name := fmt.Sprintf("new%03d", i)
		keys[name] = add(name)
	}
	<-done
	for name, k := range keys {
		if id, err := m.resolveSession(session(k.PublicKey(), name)); err != nil || id.caller.User != name {
			t.Errorf("%s, added while others were removed: %+v, %v", name, id, err)
		}
	}
}
