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
// 0700 directory) if there is none; one others can read is refused.
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
		// O_EXCL: two node adds at once do not make two keys.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return loadOrMakeEdgeKey(path)
		}
		if err != nil {
			return nil, false, fmt.Errorf("the edge cache key: %w", err)
		}
		_, werr := f.Write(key)
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			os.Remove(path)
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
