package sign

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hiddeco/sshsig"
	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
)

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func policyFor(t *testing.T, lines ...string) Policy {
	t.Helper()
	signers, err := ParseAllowedSigners([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return Policy{Signers: signers}
}

func TestPolicyVerify(t *testing.T) {
	alice, mallory := newSigner(t), newSigner(t)
	img := digest.FromString("manifest one")
	other := digest.FromString("manifest two")
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	good, err := Sign(alice, img)
	if err != nil {
		t.Fatal(err)
	}
	forOther, _ := Sign(alice, other)
	byMallory, _ := Sign(mallory, img)
	gitSig, _ := sshsig.Sign(strings.NewReader(img.String()), alice, sshsig.HashSHA512, "git")
	wrongNamespace := sshsig.Armor(gitSig)
	// Flip a character in the signature bytes, near the armor's end.
	damaged := []byte(string(good))
	end := strings.Index(string(damaged), "\n-----END")
	if damaged[end-6] == 'A' {
		damaged[end-6] = 'B'
	} else {
		damaged[end-6] = 'A'
	}
	key := KeyLine(alice.PublicKey())
	allowed := policyFor(t, "alice@example.com "+key)

	for _, tc := range []struct {
		name   string
		policy Policy
		sigs   [][]byte
		want   string // "" = accepted
	}{
		{"signed by an allowed key", allowed, [][]byte{good}, ""},
		{"one good signature among bad ones", allowed, [][]byte{byMallory, good}, ""},
		{"unsigned", allowed, nil, "is not signed"},
		{"signed by an unknown key", allowed, [][]byte{byMallory}, "not in the allowed signers"},
		{"a signature over another digest", allowed, [][]byte{forOther}, "signs another image"},
		{"another namespace", allowed, [][]byte{wrongNamespace}, `namespace "git"`},
		{"damaged", allowed, [][]byte{damaged}, "does not verify"},
		{"not a signature", allowed, [][]byte{[]byte("hello")}, "not an SSH signature"},
		{"expired signer", policyFor(t, `alice valid-before="20261101Z" `+key), [][]byte{good}, "expired on 2026-11-01"},
		{"signer not yet valid", policyFor(t, `alice valid-after="20270101Z" `+key), [][]byte{good}, "valid only from 2027-01-01"},
		{"signer limited to other namespaces", policyFor(t, `alice namespaces="git" `+key), [][]byte{good}, "may not sign in namespace moat-image"},
		{"signer allowed in this namespace", policyFor(t, `alice namespaces="moat-*" `+key), [][]byte{good}, ""},
		{"revoked signer", Policy{Signers: allowed.Signers, Revoked: []ssh.PublicKey{alice.PublicKey()}}, [][]byte{good}, "revoked"},
		{"a cert-authority line is no plain key", policyFor(t, "alice cert-authority "+key), [][]byte{good}, "not in the allowed signers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			principal, err := tc.policy.Verify(img, tc.sigs, now)
			if tc.want == "" {
				if err != nil || !strings.HasPrefix(principal, "alice") {
					t.Fatalf("refused: %q %v", principal, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errs.ErrForbidden) {
				t.Fatalf("got %v, want a refusal mentioning %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), img.String()) {
				t.Errorf("the refusal does not name the image: %v", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	s := newSigner(t)
	img := digest.FromString("m")
	sig, _ := Sign(s, img)
	if k, err := Check(sig, img); err != nil || Fingerprint(k) != Fingerprint(s.PublicKey()) {
		t.Fatalf("check: %v", err)
	}
	if _, err := Check(sig, digest.FromString("n")); err == nil {
		t.Error("a signature checked for another image")
	}
	if _, err := Check([]byte(strings.Repeat("x", MaxSignature+1)), img); err == nil {
		t.Error("an oversized signature was read")
	}
	if _, err := Sign(s, "sha256:nothex"); err == nil {
		t.Error("signed a malformed digest")
	}
}

func FuzzParse(f *testing.F) {
	s := newSigner(f)
	sig, _ := Sign(s, digest.FromString("m"))
	f.Add(sig)
	f.Add([]byte("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := Check(b, digest.FromString("m")); err == nil && !strings.Contains(string(b), "SSH SIGNATURE") {
			t.Fatal(fmt.Sprintf("accepted %q", b))
		}
	})
}
