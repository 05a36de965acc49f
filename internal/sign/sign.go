// Package sign makes and checks the SSH signatures (OpenSSH's sshsig
// format, namespace "moat-image") that let an image run on a node. The
// signed message is the image's manifest digest as text ("sha256:…"), so
// `ssh-keygen -Y sign -n moat-image` over a file holding exactly that text
// makes a signature moat accepts, and `ssh-keygen -Y verify` accepts
// moat's. Nodes check signatures against an allowed_signers file (OpenSSH's
// format) that only the operator's own SSH access installs: the master's
// key cannot change it, so a compromised master cannot run its own code.
package sign

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/hiddeco/sshsig"
	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/ssh"
)

// Namespace is the sshsig namespace of image signatures: a signature made
// for git commits or files cannot pass for one.
const Namespace = "moat-image"

// MaxSignature bounds an armored signature (an RSA-16384 one is under 6 KiB).
const MaxSignature = 16 << 10

// Message is what is signed for an image: its manifest digest, as text.
func Message(manifest digest.Digest) []byte { return []byte(manifest.String()) }

// Sign signs an image's manifest digest and returns the armored signature.
func Sign(signer ssh.Signer, manifest digest.Digest) ([]byte, error) {
	if err := manifest.Validate(); err != nil {
		return nil, fmt.Errorf("sign %q: %w", manifest, err)
	}
	sig, err := sshsig.Sign(bytes.NewReader(Message(manifest)), signer, sshsig.HashSHA512, Namespace)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", manifest, err)
	}
	return sshsig.Armor(sig), nil
}

// Parse reads an armored signature.
func Parse(armored []byte) (*sshsig.Signature, error) {
	if len(armored) > MaxSignature {
		return nil, fmt.Errorf("signature: %d bytes, more than %d", len(armored), MaxSignature)
	}
	sig, err := sshsig.Unarmor(bytes.TrimSpace(armored))
	if err != nil {
		return nil, fmt.Errorf("signature: not an SSH signature (-----BEGIN SSH SIGNATURE-----): %w", err)
	}
	return sig, nil
}

// Check verifies a signature against the key it names, for an image: the
// master does this when a signature is attached, so a wrong one is refused
// at once, not at deploy time. Whether the key may sign is the nodes' call.
func Check(armored []byte, manifest digest.Digest) (ssh.PublicKey, error) {
	sig, err := Parse(armored)
	if err != nil {
		return nil, err
	}
	if err := verify(sig, sig.PublicKey, manifest); err != nil {
		return nil, err
	}
	return sig.PublicKey, nil
}

// verify checks one signature with one key, saying plainly what is wrong.
func verify(sig *sshsig.Signature, key ssh.PublicKey, manifest digest.Digest) error {
	if sig.Namespace != Namespace {
		return fmt.Errorf("signature is for namespace %q, not %q: it was not made to sign images", sig.Namespace, Namespace)
	}
	if _, ok := sig.PublicKey.(*ssh.Certificate); ok {
		return errors.New("signatures made with certificates are not supported: sign with a plain key")
	}
	err := sshsig.Verify(bytes.NewReader(Message(manifest)), sig, key, sig.HashAlgorithm, Namespace)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sshsig.ErrPublicKeyMismatch):
		return fmt.Errorf("signature is by %s, not this key", Fingerprint(sig.PublicKey))
	case errors.Is(err, sshsig.ErrUnsupportedHashAlgorithm), errors.Is(err, sshsig.ErrUnavailableHashAlgorithm):
		return fmt.Errorf("signature hash %q: %w", sig.HashAlgorithm, err)
	}
	return fmt.Errorf("signature does not verify for %s: it signs another image, or it is damaged", manifest)
}

// Fingerprint is a key's SHA256 fingerprint, as ssh-keygen -l shows it.
func Fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// KeyLine is a public key in authorized_keys form, without a comment.
func KeyLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}
