package cli

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moatcloud/moat/internal/errs"
)

// The cluster's edge cache key: every edge seals its ACME cache with it,
// so the master can carry their entries between them (a challenge one
// edge ordered, answered by another) without reading or forging them.
// It is the operator's, kept beside the secrets key, and node add --edge
// installs it through the operator's SSH: the master never has it.

// edgeKeyPath is the operator's edge cache key file.
func edgeKeyPath() string {
	if p := os.Getenv("MOAT_EDGE_KEY"); p != "" {
		return p
	}
	return filepath.Join(filepath.Dir(secretsKeyPath()), "edge-cache.key")
}

// loadOrMakeEdgeKey reads the 32-byte key at path, making it (0600, in a
// 0700 directory) if there is none; one others can read is refused. A key
// made is written whole to a temporary file, then linked in place, which
// fails if one is there already: two node adds at once do not make two
// keys, nor does one read the other's half-written file.
func loadOrMakeEdgeKey(path string) ([]byte, bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("the edge cache key: %w", err)
		}
		f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
		if err != nil {
			return nil, false, fmt.Errorf("the edge cache key: %w", err)
		}
		defer os.Remove(f.Name())
		_, werr := f.Write(key)
		if err := errors.Join(werr, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
			return nil, false, fmt.Errorf("the edge cache key %s: %w", path, err)
		}
		if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
			return loadOrMakeEdgeKey(path) // another made it first
		} else if err != nil {
			return nil, false, fmt.Errorf("the edge cache key %s: %w", path, err)
		}
		return key, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("%s is readable by others (%v): chmod 600 %s: %w", path, fi.Mode().Perm(), path, errs.ErrInvalid)
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	if len(key) != 32 {
		return nil, false, fmt.Errorf("the edge cache key %s: %d bytes, want 32: %w", path, len(key), errs.ErrInvalid)
	}
	return key, false, nil
}
