package sshkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

func testKey(t *testing.T) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestGenerateAndLoadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	s1, err := GenerateKey(path, "test")
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v", fi.Mode().Perm())
	}
	if _, err := GenerateKey(path, "test"); err == nil {
		t.Error("GenerateKey overwrote an existing key")
	}
	s2, err := LoadOrGenerateKey(path, "test")
	if err != nil || string(s2.PublicKey().Marshal()) != string(s1.PublicKey().Marshal()) {
		t.Fatalf("reload: %v", err)
	}
	pub, _ := os.ReadFile(path + ".pub")
	k, err := ParsePublicKey(string(pub))
	if err != nil || AuthorizedKey(k) != AuthorizedKey(s1.PublicKey()) {
		t.Errorf("the .pub file does not hold the key: %v", err)
	}
}

func TestPinnedHostKey(t *testing.T) {
	a, _ := GenerateKey(filepath.Join(t.TempDir(), "a"), "a")
	b, _ := GenerateKey(filepath.Join(t.TempDir(), "b"), "b")
	check := PinnedHostKey("n1", a.PublicKey())
	if err := check("n1:22", nil, a.PublicKey()); err != nil {
		t.Errorf("pinned key refused: %v", err)
	}
	if err := check("n1:22", nil, b.PublicKey()); err == nil {
		t.Error("another key accepted")
	}
	if err := PinnedHostKey("n1", nil)("n1:22", nil, a.PublicKey()); err == nil {
		t.Error("a node with no pinned key accepted a key")
	}
}
