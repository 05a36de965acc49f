package userauth

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// FuzzPreamble: whatever arrives first on the api socket, the parser
// neither panics nor accepts a preamble that does not round-trip.
func FuzzPreamble(f *testing.F) {
	f.Add([]byte(Magic + `{"kind":"session","user":"alice","auth":"publickey ssh-ed25519 AAAA"}` + "\n"))
	f.Add([]byte(Magic + `{"kind":"keys","key":"ssh-ed25519 AAAA"}` + "\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ReadPreamble(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WritePreamble(&out, p); err != nil {
			t.Fatalf("accepted %q but cannot write it back: %v", b, err)
		}
		q, err := ParsePreamble(out.Bytes())
		if err != nil || q != p {
			t.Fatalf("round trip of %+v: %+v, %v", p, q, err)
		}
	})
}

// FuzzAuthKey: SSH_USER_AUTH content never panics the parser, and what it
// accepts is one public key.
func FuzzAuthKey(f *testing.F) {
	_, pub := newKey(f)
	f.Add("publickey " + KeyText(pub) + "\n")
	f.Add("password\npublickey ssh-ed25519 AAAA\n")
	f.Fuzz(func(t *testing.T, info string) {
		k, err := AuthKey(info)
		if err == nil && k == nil {
			t.Fatal("nil key accepted")
		}
		if err == nil && strings.Count(info, "publickey") < 1 {
			t.Fatalf("accepted %q without a publickey line", info)
		}
	})
}

// FuzzCertPrincipals: a certificate from untrusted bytes never panics the
// parser, the check or the mapping, and a grant names exactly one user by
// a principal the certificate holds.
func FuzzCertPrincipals(f *testing.F) {
	ca, caPub := newKey(f)
	now := time.Now()
	c := newCert(f, ca, []string{"alice", "a.smith"}, now.Add(-time.Hour), now.Add(time.Hour))
	f.Add(c.Marshal())
	users := map[string]string{"alice": "alice", "a.smith": "alice", "bob": "bob"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, err := ssh.ParsePublicKey(raw)
		if err != nil {
			return
		}
		cert, ok := k.(*ssh.Certificate)
		if !ok {
			return
		}
		CheckCert(cert, func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), caPub.Marshal()) }, now)
		grants, err := Grants(cert.ValidPrincipals, func(p string) string { return users[p] })
		if err != nil {
			return
		}
		for _, g := range grants {
			if g.User != grants[0].User || users[g.Principal] != g.User || ValidPrincipal(g.Principal) != nil {
				t.Fatalf("grants %v from principals %q", grants, cert.ValidPrincipals)
			}
		}
	})
}
