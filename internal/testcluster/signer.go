package testcluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sign"
	"github.com/moatcloud/moat/internal/sshkey"
)

// The operator's image signing key in tests: one per test binary. Cluster
// nodes trust it (principal "ops@test") and require signed images.
var (
	signerOnce sync.Once
	signer     ssh.Signer
	signerPriv ed25519.PrivateKey
)

// Signer is the key cluster nodes accept image signatures from.
func Signer(t testing.TB) ssh.Signer {
	t.Helper()
	signerOnce.Do(func() {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err == nil {
			signerPriv = priv
			signer, err = ssh.NewSignerFromKey(priv)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	return signer
}

// SignerKeyFile writes the signing key to a file in a test directory, for
// commands that take --key.
func SignerKeyFile(t testing.TB) string {
	t.Helper()
	Signer(t)
	block, err := ssh.MarshalPrivateKey(signerPriv, "ops@test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "signer_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// AllowedSigners is the allowed_signers text cluster nodes get.
func AllowedSigners(t testing.TB) string {
	return "ops@test " + sshkey.AuthorizedKey(Signer(t).PublicKey()) + "\n"
}

// SignImage signs an image in the master's store with the test signer.
func SignImage(t testing.TB, c *masterapi.Client, ref string) {
	t.Helper()
	ctx := context.Background()
	img, err := c.Image(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sign.Sign(Signer(t), digest.Digest(img.Digest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddSignature(ctx, ref, sig); err != nil {
		t.Fatal(err)
	}
}

// SignNodeImage signs an image in a node's own store with the test signer.
func SignNodeImage(t testing.TB, c *nodeapi.Client, ref string) {
	t.Helper()
	ctx := context.Background()
	img, err := c.Image(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sign.Sign(Signer(t), digest.Digest(img.Digest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddSignature(ctx, ref, sig); err != nil {
		t.Fatal(err)
	}
}
