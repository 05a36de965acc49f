package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sign"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSignedImagesOnly: a node that requires signatures runs an image
// only when a key in its allowed signers signed it, and says why not
// otherwise; the policy files are read afresh at every check.
func TestSignedImagesOnly(t *testing.T) {
	n := newNode(t, "--require-signed")
	ctx := context.Background()
	ops, stranger := newKey(t), newKey(t)
	allowed := filepath.Join(n.Root, "allowed_signers")
	revoked := filepath.Join(n.Root, "revoked_signers")
	setPolicy := func(line string) {
		t.Helper()
		if err := os.WriteFile(allowed, []byte(line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opsKey := sshkey.AuthorizedKey(ops.PublicKey())
	img, err := n.Client.Image(ctx, probeImage)
	if err != nil {
		t.Fatal(err)
	}
	m := digest.Digest(img.Digest)
	create := func(name string) error {
		_, err := n.Client.CreateContainer(ctx, nodeapi.ContainerSpec{Name: name, Image: probeImage, Cmd: []string{"exit", "0"}}, false)
		return err
	}
	refused := func(name, want string) {
		t.Helper()
		err := create(name)
		if !errors.Is(err, errs.ErrForbidden) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want forbidden, mentioning %q", name, err, want)
		}
	}
	addSig := func(s ssh.Signer, d digest.Digest) error {
		sig, err := sign.Sign(s, d)
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Client.AddSignature(ctx, probeImage, sig)
		return err
	}

	refused("no-policy", "signing policy cannot be read")
	setPolicy("ops@example.com " + opsKey)
	refused("unsigned", "is not signed")
	if err := addSig(stranger, m); err != nil {
		t.Fatal(err)
	}
	refused("stranger", "not in the allowed signers")
	if err := addSig(ops, digest.FromString("another image")); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("a signature over another digest was kept: %v", err)
	}
	if err := addSig(ops, m); err != nil {
		t.Fatal(err)
	}
	if err := create("signed"); err != nil {
		t.Fatalf("a signed image was refused: %v", err)
	}
	if got, _ := n.Client.Image(ctx, probeImage); len(got.Signers) != 2 {
		t.Errorf("signers listed: %v", got.Signers)
	}
	setPolicy(`ops@example.com valid-before="20200101Z" ` + opsKey)
	refused("expired", "expired on 2020-01-01")
	setPolicy(`ops@example.com namespaces="git" ` + opsKey)
	refused("wrong-namespace", "may not sign in namespace moat-image")
	setPolicy("ops@example.com " + opsKey)
	os.WriteFile(revoked, []byte(opsKey+"\n"), 0o644)
	refused("revoked", "revoked")
	os.Remove(revoked)
	if err := create("signed-again"); err != nil {
		t.Fatalf("after the revocation was lifted: %v", err)
	}
}

// TestPullRefusesUnsigned: a pull of an image no allowed key signed is
// refused before anything is stored, and its uploads are discarded.
func TestPullRefusesUnsigned(t *testing.T) {
	n := testcluster.StartNode(t, "--require-signed")
	ctx := context.Background()
	ops := newKey(t)
	os.WriteFile(filepath.Join(n.Root, "allowed_signers"), []byte("ops "+sshkey.AuthorizedKey(ops.PublicKey())+"\n"), 0o644)
	inbox := filepath.Join(n.Root, "inbox", "blobs")
	os.MkdirAll(inbox, 0o700)
	blobs := layoutBlobs(t, testcluster.ProbeImage(t, probeImage))
	var manifest string
	for d, b := range blobs {
		if isManifest(b) {
			manifest = d
		}
		os.WriteFile(filepath.Join(inbox, image.InboxName(digest.Digest(d))), b, 0o600)
	}
	wrong, _ := sign.Sign(ops, digest.FromString("another image"))
	for _, sigs := range [][]string{nil, {string(wrong)}} {
		_, err := n.Client.Pull(ctx, nodeapi.PullRequest{Name: "probe:pulled", Digest: manifest, Signatures: sigs})
		if !errors.Is(err, errs.ErrForbidden) {
			t.Fatalf("pull with signatures %d: %v, want forbidden", len(sigs), err)
		}
		if left, _ := os.ReadDir(inbox); len(left) != 0 {
			t.Fatalf("a refused pull left %d uploads in the inbox", len(left))
		}
		if imgs, _ := n.Client.Images(ctx); len(imgs) != 0 {
			t.Fatalf("a refused pull stored %+v", imgs)
		}
		for d, b := range blobs {
			os.WriteFile(filepath.Join(inbox, image.InboxName(digest.Digest(d))), b, 0o600)
		}
	}
	good, _ := sign.Sign(ops, digest.Digest(manifest))
	img, err := n.Client.Pull(ctx, nodeapi.PullRequest{Name: "probe:pulled", Digest: manifest, Signatures: []string{string(good)}})
	if err != nil || len(img.Signers) != 1 {
		t.Fatalf("signed pull: %+v %v", img, err)
	}
	if _, err := n.Client.CreateContainer(ctx, nodeapi.ContainerSpec{Name: "ok", Image: "probe:pulled", Cmd: []string{"exit", "0"}}, false); err != nil {
		t.Fatalf("run the signed pull: %v", err)
	}
}
