package edge

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/crypto/acme/autocert"
)

// Cache is an autocert.Cache that seals every entry (account key,
// certificates with their private keys, challenge tokens) with AES-256-GCM
// under a key the edge is given, so a copy of the disk gives away nothing
// without that key. Each file is named by the SHA-256 of its entry name
// (names come partly from the CA, and never become paths) and the name is
// the AEAD's additional data, so a file moved to another name does not
// open. Files are 0600 in a 0700 directory, written whole and renamed.
type Cache struct {
	dir  string
	aead cipher.AEAD
	log  *slog.Logger
}

const cacheVersion = 1

// NewCache opens (making it if need be) an encrypted cache in dir.
func NewCache(dir string, key []byte, log *slog.Logger) (*Cache, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("cache key: want 32 bytes, have %d", len(key))
	}
	if dir == "" {
		return nil, errors.New("cache: no directory")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cache key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("cache key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Cache{dir: dir, aead: aead, log: log}, nil
}

func (c *Cache) path(name string) string {
	h := sha256.Sum256([]byte(name))
	return filepath.Join(c.dir, hex.EncodeToString(h[:]))
}

func additional(name string) []byte { return append([]byte("moat edge cache\x00"), name...) }

// Get opens an entry. An entry that does not open (another key, a
// damaged file) is reported as a miss, with a warning: the Manager then
// gets a new certificate and overwrites it, rather than failing every
// handshake for that name until someone removes the file.
func (c *Cache) Get(_ context.Context, name string) ([]byte, error) {
	data, err := os.ReadFile(c.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, autocert.ErrCacheMiss
	}
	if err != nil {
		return nil, fmt.Errorf("cache get %q: %w", name, err)
	}
	ns := c.aead.NonceSize()
	if len(data) < 1+ns || data[0] != cacheVersion {
		c.log.Warn("cache entry unreadable", "name", name, "err", "bad header")
		return nil, autocert.ErrCacheMiss
	}
	plain, err := c.aead.Open(nil, data[1:1+ns], data[1+ns:], additional(name))
	if err != nil {
		c.log.Warn("cache entry unreadable", "name", name, "err", err)
		return nil, autocert.ErrCacheMiss
	}
	return plain, nil
}

// Put seals and writes an entry.
func (c *Cache) Put(_ context.Context, name string, data []byte) error {
	ns := c.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(data)+c.aead.Overhead())
	out[0] = cacheVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return fmt.Errorf("cache put %q: %w", name, err)
	}
	out = c.aead.Seal(out, out[1:1+ns], data, additional(name))
	if err := writeFileAtomic(c.path(name), out); err != nil {
		return fmt.Errorf("cache put %q: %w", name, err)
	}
	return nil
}

// Delete removes an entry; a missing one is not an error.
func (c *Cache) Delete(_ context.Context, name string) error {
	if err := os.Remove(c.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache delete %q: %w", name, err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
