package sign

import (
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/ssh"
)

// keygen returns ssh-keygen, which the tests need (openssh-client; CI
// installs it).
func keygen(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("needs ssh-keygen (Debian package openssh-client)")
	}
	return p
}

// TestSignedBySSHKeygen: a signature made by OpenSSH over a file holding
// the digest is accepted.
func TestSignedBySSHKeygen(t *testing.T) {
	bin := keygen(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command(bin, "-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	img := digest.FromString("a manifest")
	msg := filepath.Join(dir, "digest")
	os.WriteFile(msg, Message(img), 0o644)
	if out, err := exec.Command(bin, "-Y", "sign", "-f", key, "-n", Namespace, msg).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(msg + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(key + ".pub")
	policy := policyFor(t, "ops@example.com "+strings.TrimSpace(string(pub)))
	if who, err := policy.Verify(img, [][]byte{sig}, time.Now()); err != nil || who != "ops@example.com" {
		t.Fatalf("moat refused ssh-keygen's signature: %q %v", who, err)
	}
	if _, err := policy.Verify(digest.FromString("another"), [][]byte{sig}, time.Now()); err == nil {
		t.Error("ssh-keygen's signature passed for another image")
	}
}

// TestVerifiedBySSHKeygen: moat's signature passes ssh-keygen -Y verify
// with the same allowed_signers file a node uses, and fails it for
// another digest.
func TestVerifiedBySSHKeygen(t *testing.T) {
	bin := keygen(t)
	dir := t.TempDir()
	signer := newSigner(t)
	img := digest.FromString("a manifest")
	sig, err := Sign(signer, img)
	if err != nil {
		t.Fatal(err)
	}
	sigPath := filepath.Join(dir, "image.sig")
	os.WriteFile(sigPath, sig, 0o644)
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte(`ops@example.com namespaces="moat-image" `+string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), 0o644)
	verify := func(message string) (string, error) {
		cmd := exec.Command(bin, "-Y", "verify", "-f", allowed, "-I", "ops@example.com", "-n", Namespace, "-s", sigPath)
		cmd.Stdin = strings.NewReader(message)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := verify(img.String()); err != nil || !strings.Contains(out, "Good \"moat-image\" signature for ops@example.com") {
		t.Fatalf("ssh-keygen -Y verify refused moat's signature: %v\n%s", err, out)
	}
	if out, err := verify(digest.FromString("another").String()); err == nil {
		t.Errorf("ssh-keygen accepted moat's signature for another digest:\n%s", out)
	}
	pemBlock, _ := pem.Decode(sig)
	if pemBlock == nil || pemBlock.Type != "SSH SIGNATURE" {
		t.Errorf("armor: %q", sig)
	}
}
