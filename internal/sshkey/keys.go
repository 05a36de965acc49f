// Package sshkey holds the SSH key handling the master and nodes share:
// ed25519 keys in OpenSSH format, authorized_keys lines, and host keys
// pinned at enrolment (a changed key is refused, naming both
// fingerprints). No connection logic: that is sshx (the master's) and the
// node's peer fetch.
package sshkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// GenerateKey writes a new ed25519 key pair in OpenSSH format: path (0600)
// and path.pub. It refuses to overwrite.
func GenerateKey(path, comment string) (ssh.Signer, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("generate key: %s already exists", path)
	}
	private, pub, err := NewKey(comment)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, private, 0o600); err != nil {
		return nil, err
	}
	line := AuthorizedKey(pub) + " " + comment + "\n"
	if err := os.WriteFile(path+".pub", []byte(line), 0o644); err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(private)
}

// NewKey makes an ed25519 key pair: the private half as an OpenSSH PEM
// block carrying comment, and the public half.
func NewKey(comment string) (private []byte, public ssh.PublicKey, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, nil, err
	}
	public, err = ssh.NewPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(block), public, nil
}

// LoadSigner reads an unencrypted OpenSSH private key.
func LoadSigner(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	return s, nil
}

// LoadOrGenerateKey loads the key at path, making it first if missing.
func LoadOrGenerateKey(path, comment string) (ssh.Signer, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return GenerateKey(path, comment)
	}
	return LoadSigner(path)
}

// ParsePublicKey parses one authorized_keys-format line.
func ParsePublicKey(line string) (ssh.PublicKey, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("parse public key %q: %w", line, err)
	}
	return key, nil
}

// AuthorizedKey formats a public key as an authorized_keys line body.
func AuthorizedKey(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}
