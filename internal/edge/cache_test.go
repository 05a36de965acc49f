package edge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/acme/autocert"
)

func TestCacheSealed(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "acme")
	key := bytes.Repeat([]byte{7}, 32)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := NewCache(dir, key, quiet)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("-----BEGIN EC PRIVATE KEY-----\nsecret bytes\n")
	if err := c.Put(ctx, "example.com", secret); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "example.com")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("get: %q, %v", got, err)
	}
	if _, err := c.Get(ctx, "other.com"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Errorf("missing entry: %v, want a miss", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v, want 0700", fi.Mode(), err)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 1 {
		t.Fatalf("%d files, want 1", len(files))
	}
	file := filepath.Join(dir, files[0].Name())
	fi, _ := os.Stat(file)
	raw, _ := os.ReadFile(file)
	if fi.Mode().Perm() != 0o600 || bytes.Contains(raw, []byte("PRIVATE KEY")) || bytes.Contains(raw, []byte("secret bytes")) || bytes.Contains([]byte(files[0].Name()), []byte("example")) {
		t.Errorf("file %s (%v) holds the entry or its name in clear", files[0].Name(), fi.Mode())
	}

	// Another key, or an entry moved to another name, does not open.
	other, _ := NewCache(dir, bytes.Repeat([]byte{8}, 32), quiet)
	if _, err := other.Get(ctx, "example.com"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Errorf("other key: %v, want a miss", err)
	}
	if err := os.Rename(file, c.path("evil.com")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "evil.com"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Errorf("renamed entry: %v, want a miss", err)
	}
	if err := c.Delete(ctx, "evil.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "evil.com"); err != nil {
		t.Errorf("delete twice: %v", err)
	}
	if _, err := NewCache(dir, key[:16], quiet); err == nil {
		t.Error("16-byte key accepted")
	}
}
