package sign

import (
	"strings"
	"testing"
	"time"
)

const edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFz9kCz1Gd2hgTDBxsk6pEIkbkeVF3aVn7IYO1f6VXBc"

func TestParseAllowedSigners(t *testing.T) {
	utc := func(s string) time.Time { v, _ := time.Parse("20060102150405", s); return v }
	for _, tc := range []struct {
		name, in string
		check    func(AllowedSigner) bool
	}{
		{"plain", "ops@example.com " + edKey, func(s AllowedSigner) bool {
			return len(s.Principals) == 1 && s.Principals[0] == "ops@example.com" && s.Key != nil && !s.CertAuthority
		}},
		{"several principals, comment", "a,b@x " + edKey + " laptop key", func(s AllowedSigner) bool {
			return len(s.Principals) == 2 && s.Principals[1] == "b@x"
		}},
		{"namespaces", `ops namespaces="moat-image,git" ` + edKey, func(s AllowedSigner) bool {
			return len(s.Namespaces) == 2 && s.allows("moat-image") && !s.allows("file")
		}},
		{"validity in UTC", `ops valid-after="20260101Z",valid-before="20270102030405Z" ` + edKey, func(s AllowedSigner) bool {
			return s.ValidAfter.Equal(utc("20260101000000")) && s.ValidBefore.Equal(utc("20270102030405"))
		}},
		{"cert authority", "*@example.com cert-authority " + edKey, func(s AllowedSigner) bool { return s.CertAuthority }},
		{"tabs and spaces", "ops\t \t" + edKey, func(s AllowedSigner) bool { return s.Key != nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAllowedSigners([]byte("# a comment\n\n" + tc.in + "\n"))
			if err != nil || len(got) != 1 || !tc.check(got[0]) || got[0].Line != 3 {
				t.Fatalf("%q: %+v %v", tc.in, got, err)
			}
		})
	}
}

func TestParseAllowedSignersErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ops", "line 1: want: PRINCIPALS"},
		{"ops ssh-ed25519 AAAAnotbase64!!", "line 1: public key"},
		{`ops frobnicate ` + edKey, `unknown option "frobnicate"`},
		{`ops valid-before=20260101 ` + edKey, "value must be in double quotes"},
		{`ops valid-before="2026-01-01" ` + edKey, "want YYYYMMDD"},
		{`ops valid-after="20261399" ` + edKey, "want YYYYMMDD"},
		{",ops " + edKey, "empty principal"},
		{"# fine\nops " + edKey + "\nbroken", "line 3"},
	} {
		_, err := ParseAllowedSigners([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestWildcard(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"moat-image", "moat-image", true},
		{"moat-*", "moat-image", true},
		{"*", "", true},
		{"m??t-image", "moat-image", true},
		{"moat", "moat-image", false},
		{"*-imag", "moat-image", false},
		{"?", "", false},
	} {
		if got := wildcard(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcard(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
	s := AllowedSigner{Namespaces: []string{"*", "!moat-*"}}
	if s.allows("moat-image") || !s.allows("git") {
		t.Error("a negated pattern must exclude")
	}
}

func TestParseRevoked(t *testing.T) {
	keys, err := ParseRevoked([]byte("# gone\n" + edKey + " old laptop\n\n"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("%v %v", keys, err)
	}
	if _, err := ParseRevoked([]byte("SSHKRL\x00binary")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a binary KRL: %v", err)
	}
}

func FuzzParseAllowedSigners(f *testing.F) {
	f.Add("ops " + edKey)
	f.Add(`a,b namespaces="moat-image",valid-before="20300101Z" ` + edKey + " c")
	f.Add(`x cert-authority,valid-after="202601011200" ` + edKey)
	f.Add(`"q u" namespaces="a b" ` + edKey)
	f.Fuzz(func(t *testing.T, in string) {
		signers, err := ParseAllowedSigners([]byte(in))
		if err != nil {
			return
		}
		for _, s := range signers {
			if s.Key == nil || len(s.Principals) == 0 || s.Line < 1 {
				t.Fatalf("accepted an incomplete signer %+v from %q", s, in)
			}
		}
	})
}
