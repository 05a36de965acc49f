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
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// Cache is an autocert.Cache that seals every entry (account key,
// certificates with their private keys, challenge tokens) with AES-256-GCM
// under a key the edge is given, so a copy of the disk gives away nothing
// without that key. Each file is named by the SHA-256 of its entry name
// (names come partly from the CA, and never become paths), which is also
// in the AEAD's additional data, so a file moved to another name does not
// open. Files are 0600 in a 0700 directory, written whole and renamed.
//
// Entries are bound to the hash of their name (format 2), so that an
// edge receiving another edge's entry, which travels by hash only, can
// check it before keeping it (Install); entries of format 1, bound to the
// name itself, still open. When the key is shared by the cluster's edges
// (the operator installs it; see replica_cache.go), every change is also
// handed to an Outbox, which the master carries to the other edges as
// opaque bytes it can neither read nor forge.
type Cache struct {
	dir   string
	aead  cipher.AEAD
	keyID string
	log   *slog.Logger

	out *Outbox // nil: no replication

	id       string // this cache's, in its claims (claim.go)
	mu       sync.Mutex
	claiming map[string]*sync.Mutex // per host: one claim at a time
	arrived  chan struct{}          // closed when another edge's entry is installed; replaced
}

const (
	cacheVersion1 = 1 // AAD: the name
	cacheVersion  = 2 // AAD: the name's hash
	// cacheDeleted marks a sealed deletion (nothing sealed, AAD: the
	// hash, marked deleted): what travels when an edge deletes an entry,
	// so the master cannot delete one itself. Never on disk.
	cacheDeleted = 3
)

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
	id := sha256.Sum256(append([]byte("moat edge cache key id\x00"), key...))
	var me [8]byte
	if _, err := rand.Read(me[:]); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Cache{dir: dir, aead: aead, keyID: hex.EncodeToString(id[:8]), log: log,
		id: hex.EncodeToString(me[:]), claiming: map[string]*sync.Mutex{}, arrived: make(chan struct{})}, nil
}

// KeyID names the cache's key without giving it away: edges whose IDs
// are equal share the key, and only they exchange entries.
func (c *Cache) KeyID() string { return c.keyID }

// NameHash is the hex SHA-256 of an entry name: its file's name, and all
// the master learns of it.
func NameHash(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:])
}

func (c *Cache) path(name string) string { return c.hashPath(NameHash(name)) }

func (c *Cache) hashPath(hash string) string { return filepath.Join(c.dir, hash) }

func additional(name string) []byte { return append([]byte("moat edge cache\x00"), name...) }

func additionalHash(hash string) []byte { return append([]byte("moat edge cache v2\x00"), hash...) }

func additionalDeleted(hash string) []byte {
	return append([]byte("moat edge cache deleted\x00"), hash...)
}

// seal seals plain under hash with the additional data of format.
func (c *Cache) seal(format byte, hash string, plain []byte) ([]byte, error) {
	ns := c.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+c.aead.Overhead())
	out[0] = format
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	ad := additionalHash(hash)
	if format == cacheDeleted {
		ad = additionalDeleted(hash)
	}
	return c.aead.Seal(out, out[1:1+ns], plain, ad), nil
}

// open opens a sealed entry of either format; hash is name's.
func (c *Cache) open(data []byte, name, hash string) ([]byte, error) {
	ns := c.aead.NonceSize()
	if len(data) < 1+ns {
		return nil, errors.New("bad header")
	}
	var ad []byte
	switch data[0] {
	case cacheVersion1:
		if name == "" {
			return nil, errors.New("format 1 entries are not replicated")
		}
		ad = additional(name)
	case cacheVersion:
		ad = additionalHash(hash)
	default:
		return nil, fmt.Errorf("unknown format %d", data[0])
	}
	return c.aead.Open(nil, data[1:1+ns], data[1+ns:], ad)
}

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
	plain, err := c.open(data, name, NameHash(name))
	if err != nil {
		c.log.Warn("cache entry unreadable", "name", name, "err", err)
		return nil, autocert.ErrCacheMiss
	}
	return plain, nil
}

// Put seals and writes an entry, and hands it to the outbox if there is
// one. A challenge's entry is then waited for (Outbox.Put): the CA may
// ask any edge for it as soon as Put returns.
func (c *Cache) Put(ctx context.Context, name string, data []byte) error {
	hash := NameHash(name)
	out, err := c.seal(cacheVersion, hash, data)
	if err != nil {
		return fmt.Errorf("cache put %q: %w", name, err)
	}
	if err := writeFileAtomic(c.hashPath(hash), out); err != nil {
		return fmt.Errorf("cache put %q: %w", name, err)
	}
	// A handshake waiting for a certificate another edge claimed
	// (claim.go) takes this edge's own as well: another handshake,
	// tired of waiting, may have ordered it here.
	c.wakeArrived()
	if c.out != nil {
		c.out.Put(ctx, hash, out, IsChallenge(name))
	}
	return nil
}

// Delete removes an entry; a missing one is not an error. The outbox
// hears of it, sealed (format 3), without waiting.
func (c *Cache) Delete(_ context.Context, name string) error {
	hash := NameHash(name)
	if err := os.Remove(c.hashPath(hash)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache delete %q: %w", name, err)
	}
	if c.out != nil {
		gone, err := c.seal(cacheDeleted, hash, nil)
		if err != nil {
			return fmt.Errorf("cache delete %q: %w", name, err)
		}
		c.out.Put(context.Background(), hash, gone, false)
	}
	return nil
}

// IsDeletion says whether a sealed entry, as the outbox and the master
// carry it, is a deletion (format 3). It does not say it is genuine.
func IsDeletion(data []byte) bool { return len(data) > 0 && data[0] == cacheDeleted }

// IsChallenge says whether autocert stores a challenge under name: an
// HTTP-01 token ("TOKEN+http-01") or a TLS-ALPN-01 certificate
// ("DOMAIN+token"), see golang.org/x/crypto/acme/autocert.
func IsChallenge(name string) bool {
	return strings.HasSuffix(name, "+http-01") || strings.HasSuffix(name, "+token")
}

// Install keeps an entry another edge made, as the master hands it over:
// by hash, sealed; a sealed deletion (format 3) removes it. Either must
// open with this cache's key bound to that very hash, so the master can
// neither forge an entry, nor move one to another name, nor delete one
// (the account key, a certificate: the edge would order again, and spend
// the CA's rate limits); such an entry is refused and the cache left as
// it was. Nor may it hand over a certificate expired or older than the
// one the edge holds (rollback.go). An entry this edge changed itself and
// has not yet seen acknowledged is skipped (false, nil): its own, newer,
// is on its way to the others.
func (c *Cache) Install(hash string, data []byte) (bool, error) {
	return c.install(hash, data, false)
}

// InstallClaim keeps another edge's claim to order a name's certificate
// (claim.go), checked as Install checks entries, even over a claim of this
// edge's own not yet acknowledged: the master says whose claim won. What
// does not open as a claim is refused: the master's mark alone must not
// let any other entry past that check.
func (c *Cache) InstallClaim(hash string, data []byte) (bool, error) {
	return c.install(hash, data, true)
}

func (c *Cache) install(hash string, data []byte, claim bool) (bool, error) {
	if !validHash(hash) {
		return false, fmt.Errorf("cache install: %q is not a name hash", hash)
	}
	if !claim && c.out != nil && c.out.pending(hash) {
		return false, nil
	}
	defer c.wakeArrived()
	if IsDeletion(data) {
		if claim {
			// Claims are never deleted; the mark would let a deletion
			// past this edge's own change not yet acknowledged.
			return false, fmt.Errorf("cache install %s: a deletion marked a claim", hash[:12])
		}
		ns := c.aead.NonceSize()
		if len(data) < 1+ns {
			return false, fmt.Errorf("cache install %s: a deletion too short", hash[:12])
		}
		if _, err := c.aead.Open(nil, data[1:1+ns], data[1+ns:], additionalDeleted(hash)); err != nil {
			return false, fmt.Errorf("cache install %s: a deletion that does not open with this edge's key for this name: %w", hash[:12], err)
		}
		if err := os.Remove(c.hashPath(hash)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("cache install %s: %w", hash[:12], err)
		}
		return true, nil
	}
	if len(data) == 0 || data[0] != cacheVersion {
		return false, fmt.Errorf("cache install %s: not a format %d entry", hash[:12], cacheVersion)
	}
	plain, err := c.open(data, "", hash)
	if err != nil {
		return false, fmt.Errorf("cache install %s: does not open with this edge's key for this name: %w", hash[:12], err)
	}
	if claim {
		err = isClaim(plain)
	} else {
		err = c.notOlder(hash, plain, time.Now())
	}
	if err != nil {
		return false, fmt.Errorf("cache install %s: %w", hash[:12], err)
	}
	if err := writeFileAtomic(c.hashPath(hash), data); err != nil {
		return false, fmt.Errorf("cache install %s: %w", hash[:12], err)
	}
	return true, nil
}

func validHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
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
