package master

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// PoolTokenKeyFile holds the key that seals pools' provider API tokens
// (XChaCha20-Poly1305), beside the master's SSH key and NOT in the
// database: a copy of master.db (a backup, a support bundle) holds only
// ciphertexts. Made on first use, 0600.
const PoolTokenKeyFile = "pool-token.key"

// tokenSealer seals and opens pools' tokens; each is bound (the
// additional data) to its pool's name, provider and API endpoint, so a
// sealed token copied to another pool's row, or a row whose endpoint was
// edited in the database, does not open: a token is sent only where the
// operator who gave it said.
type tokenSealer struct {
	once sync.Once
	aead cipher.AEAD
	err  error
}

// sealerFor opens (making it on first use) the key in dir.
func (s *tokenSealer) get(dir string) (cipher.AEAD, error) {
	s.once.Do(func() {
		var key []byte
		key, s.err = loadOrMakeKey(filepath.Join(dir, PoolTokenKeyFile))
		if s.err == nil {
			s.aead, s.err = chacha20poly1305.NewX(key)
		}
	})
	return s.aead, s.err
}

func loadOrMakeKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, chacha20poly1305.KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return loadOrMakeKey(path) // made meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("make the pool token key %s: %w", path, err)
		}
		_, err = f.Write(key)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("write the pool token key %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the pool token key %s: %w", path, err)
	}
	if len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("the pool token key %s is %d bytes, not %d", path, len(key), chacha20poly1305.KeySize)
	}
	return key, nil
}

func tokenAD(pool, provider, endpoint string) []byte {
	return []byte("moat pool token v1\x00" + pool + "\x00" + provider + "\x00" + endpoint)
}

// sealToken seals a pool's token: nonce, then ciphertext.
func sealToken(aead cipher.AEAD, pool, provider, endpoint, token string) ([]byte, error) {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(token)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, []byte(token), tokenAD(pool, provider, endpoint)), nil
}

// openToken opens what sealToken sealed for the same pool, provider and
// endpoint. The error never holds any of the token.
func openToken(aead cipher.AEAD, pool, provider, endpoint string, sealed []byte) (string, error) {
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return "", fmt.Errorf("pool %s: the sealed API token is cut short", pool)
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], tokenAD(pool, provider, endpoint))
	if err != nil {
		return "", fmt.Errorf("pool %s: the API token does not open with %s (another master's key, or a row copied from another pool or changed in the database): set it again with moat pool set %s --token-file", pool, PoolTokenKeyFile, pool)
	}
	return string(plain), nil
}
