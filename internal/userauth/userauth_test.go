package userauth

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func newKey(t testing.TB) (ssh.Signer, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.PublicKey()
}

func newCert(t testing.TB, ca ssh.Signer, principals []string, after, before time.Time) *ssh.Certificate {
	t.Helper()
	_, pub := newKey(t)
	c := &ssh.Certificate{Key: pub, Serial: 7, CertType: ssh.UserCert, KeyId: "alice@laptop", ValidPrincipals: principals,
		ValidAfter: uint64(after.Unix()), ValidBefore: uint64(before.Unix())}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPreambleRoundTrip(t *testing.T) {
	_, pub := newKey(t)
	p := Preamble{Kind: KindSession, User: "alice", Auth: "publickey " + KeyText(pub) + "\n", Client: "10.0.0.1 5555 10.0.0.2 22"}
	var b bytes.Buffer
	if err := WritePreamble(&b, p); err != nil {
		t.Fatal(err)
	}
	b.WriteString("GET /v1/ping HTTP/1.1\r\n") // the client's bytes, after it
	br := bufio.NewReader(&b)
	got, err := ReadPreamble(br)
	if err != nil {
		t.Fatal(err)
	}
	if got != p {
		t.Fatalf("got %+v, want %+v", got, p)
	}
	rest, _ := br.ReadString('\n')
	if rest != "GET /v1/ping HTTP/1.1\r\n" {
		t.Fatalf("the bytes after the preamble: %q", rest)
	}
}

func TestPreambleRefused(t *testing.T) {
	long := Magic + `{"kind":"session","auth":"` + strings.Repeat("a", MaxPreamble) + `"}` + "\n"
	for name, line := range map[string]string{
		"no magic":        `{"kind":"session","auth":"x"}` + "\n",
		"http instead":    "GET /v1/ping HTTP/1.1\r\n",
		"unknown kind":    Magic + `{"kind":"root"}` + "\n",
		"unknown field":   Magic + `{"kind":"session","auth":"x","caller":"root"}` + "\n",
		"two objects":     Magic + `{"kind":"session","auth":"x"}{"kind":"keys"}` + "\n",
		"session no auth": Magic + `{"kind":"session","user":"alice"}` + "\n",
		"bad user":        Magic + `{"kind":"session","user":"Root Admin","auth":"x"}` + "\n",
		"keys no key":     Magic + `{"kind":"keys"}` + "\n",
		"too long":        long,
		"no newline":      Magic + `{"kind":"session","auth":"x"}`,
		"cr inside":       Magic + `{"kind":"session","auth":"x"}` + "\r\n",
	} {
		if _, err := ReadPreamble(bufio.NewReader(strings.NewReader(line))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAuthKey(t *testing.T) {
	_, a := newKey(t)
	_, b := newKey(t)
	got, err := AuthKey("publickey " + KeyText(a) + "\n")
	if err != nil || !bytes.Equal(got.Marshal(), a.Marshal()) {
		t.Fatalf("AuthKey: %v, %v", got, err)
	}
	for name, info := range map[string]string{
		"empty":         "",
		"two keys":      "publickey " + KeyText(a) + "\npublickey " + KeyText(b) + "\n",
		"password":      "password\n",
		"kbd and key":   "keyboard-interactive\npublickey " + KeyText(a) + "\n",
		"type mismatch": "publickey ssh-rsa " + strings.Fields(KeyText(a))[1] + "\n",
		"bad base64":    "publickey ssh-ed25519 !!!\n",
		"no base64":     "publickey ssh-ed25519\n",
		"garbage key":   "publickey ssh-ed25519 AAAA\n",
	} {
		if _, err := AuthKey(info); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCheckCert(t *testing.T) {
	ca, caPub := newKey(t)
	other, _ := newKey(t)
	now := time.Now()
	trusted := func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), caPub.Marshal()) }
	good := newCert(t, ca, []string{"alice"}, now.Add(-time.Hour), now.Add(time.Hour))
	if err := CheckCert(good, trusted, now); err != nil {
		t.Fatalf("a good certificate: %v", err)
	}
	if !Expires(good).Equal(time.Unix(int64(good.ValidBefore), 0)) {
		t.Errorf("Expires: %v", Expires(good))
	}
	host := newCert(t, ca, []string{"alice"}, now.Add(-time.Hour), now.Add(time.Hour))
	host.CertType = ssh.HostCert
	host.SignCert(rand.Reader, ca)
	forged := newCert(t, ca, []string{"alice"}, now.Add(-time.Hour), now.Add(time.Hour))
	forged.ValidPrincipals = []string{"root"} // changed after signing
	unknownOpt := newCert(t, ca, []string{"alice"}, now.Add(-time.Hour), now.Add(time.Hour))
	unknownOpt.CriticalOptions = map[string]string{"no-such-option": ""}
	unknownOpt.SignCert(rand.Reader, ca)
	for name, c := range map[string]*ssh.Certificate{
		"expired":          newCert(t, ca, []string{"alice"}, now.Add(-2*time.Hour), now.Add(-time.Hour)),
		"not yet valid":    newCert(t, ca, []string{"alice"}, now.Add(time.Hour), now.Add(2*time.Hour)),
		"untrusted CA":     newCert(t, other, []string{"alice"}, now.Add(-time.Hour), now.Add(time.Hour)),
		"host certificate": host,
		"changed":          forged,
		"no principals":    newCert(t, ca, nil, now.Add(-time.Hour), now.Add(time.Hour)),
		"unknown critical": unknownOpt,
	} {
		if err := CheckCert(c, trusted, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestGrants(t *testing.T) {
	users := map[string]string{"alice": "alice", "a.smith": "alice", "bob": "bob"}
	userOf := func(p string) string { return users[p] }
	for _, tc := range []struct {
		principals []string
		want       []Grant
		err        bool
	}{
		{[]string{"alice"}, []Grant{{"alice", "alice"}}, false},
		{[]string{"nobody", "a.smith"}, []Grant{{"alice", "a.smith"}}, false},
		{[]string{"alice", "a.smith"}, []Grant{{"alice", "alice"}, {"alice", "a.smith"}}, false},
		{[]string{"alice", "bob"}, nil, true}, // two users: none
		{[]string{"nobody"}, nil, false},
		{[]string{"al ice", "alice\"x"}, nil, false}, // could not stand on a line
		{nil, nil, false},
	} {
		got, err := Grants(tc.principals, userOf)
		if (err != nil) != tc.err || len(got) != len(tc.want) {
			t.Errorf("%v: got %v, %v; want %v (error %v)", tc.principals, got, err, tc.want, tc.err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%v: got %v, want %v", tc.principals, got, tc.want)
			}
		}
	}
}

func TestNamesAndLines(t *testing.T) {
	for _, ok := range []string{"alice", "a", "bob.smith-2", "x_y"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Alice", "1alice", "al ice", `a"b`, "a,b", strings.Repeat("a", 33), "root\n", "-x"} {
		if ValidName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, bad := range []string{"", "a b", `a"b`, "a,b", "a#b", "é", "a\\b", strings.Repeat("a", 257)} {
		if ValidPrincipal(bad) == nil {
			t.Errorf("principal %q accepted", bad)
		}
	}
	line := AuthorizedLine("/usr/local/bin/moat", "alice", "ssh-ed25519 AAAA")
	if line != `restrict,command="/usr/local/bin/moat api --user alice" ssh-ed25519 AAAA` {
		t.Errorf("AuthorizedLine: %s", line)
	}
	for in, want := range map[string][2]string{
		"admin": {"admin", "default"}, "viewer@shop": {"viewer", "shop"}, "admin@*": {"admin", "*"},
	} {
		r, tn, err := ParseRoleTenant(in)
		if err != nil || r != want[0] || tn != want[1] {
			t.Errorf("%s: %s %s %v", in, r, tn, err)
		}
	}
	for _, bad := range []string{"root", "admin@", "admin@Shop", "admin@a b", "@shop"} {
		if _, _, err := ParseRoleTenant(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestVerdict(t *testing.T) {
	var b bytes.Buffer
	WriteVerdict(&b, nil)
	WriteVerdict(&b, errors.New("key SHA256:x\nbelongs to no user"))
	br := bufio.NewReader(&b)
	if err := ReadVerdict(br); err != nil {
		t.Fatalf("ok: %v", err)
	}
	err := ReadVerdict(br)
	if err == nil || !strings.Contains(err.Error(), "belongs to no user") {
		t.Fatalf("refusal: %v", err)
	}
	if ReadVerdict(bufio.NewReader(strings.NewReader(""))) == nil {
		t.Fatal("no answer taken for ok")
	}
	if ReadVerdict(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\n"))) == nil {
		t.Fatal("an HTTP response taken for ok")
	}
}
