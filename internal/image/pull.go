package image

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// InboxName is the file name a blob is uploaded under in a node's inbox
// (nodeapi.Layout owns the inbox).
func InboxName(d digest.Digest) string { return nodeapi.InboxBlobName(string(d)) }

// Pull assembles the image whose manifest is m from loose blobs: those the
// store has, and those waiting in dir as sha256-HEX files (uploaded by the
// master). Each uploaded blob is verified as it is stored, and removed from
// dir; one whose content does not match its name is discarded. Layers are
// unpacked and checked against the config's diff IDs before the image is
// named.
func (s *Store) Pull(ctx context.Context, m digest.Digest, name, dir string) (Image, error) {
	if err := checkDigest(m); err != nil {
		return Image{}, err
	}
	if err := s.takeLoose(m, -1, dir); err != nil {
		return Image{}, err
	}
	mb, err := s.ReadBlob(m)
	if err != nil {
		return Image{}, err
	}
	man, err := parseManifest(mb)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", m, err)
	}
	if err := s.takeLoose(man.Config.Digest, man.Config.Size, dir); err != nil {
		return Image{}, err
	}
	cb, err := s.ReadBlob(man.Config.Digest)
	if err != nil {
		return Image{}, err
	}
	img, err := resolveImage(man, cb)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", m, err)
	}
	img.Size += int64(len(mb))
	for _, l := range img.Layers {
		if err := s.takeLoose(l.Digest, l.Size, dir); err != nil {
			return Image{}, err
		}
	}
	p := pending{name: NormalizeName(name), manifest: m, img: img}
	s.importMu.Lock()
	defer s.importMu.Unlock()
	for _, l := range img.Layers {
		if _, err := s.ensureLayer(ctx, l); err != nil {
			return Image{}, fmt.Errorf("pull %s: %w", m, err)
		}
	}
	if err := s.addToIndex([]pending{p}); err != nil {
		return Image{}, err
	}
	img.Name, img.Digest = p.name, m
	return img, nil
}

// takeLoose makes sure the store has blob d, taking it from dir if needed:
// verified where it lies and then renamed into the store, so the bytes are
// read once and never copied (the inbox is on the store's filesystem).
// The name stays valid throughout, for peers fetching it meanwhile. Every
// later reader of a blob checks its digest again, so nothing written into
// the file after the check is ever trusted.
func (s *Store) takeLoose(d digest.Digest, size int64, dir string) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	if s.HasBlob(d) {
		return nil
	}
	path := filepath.Join(dir, InboxName(d))
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s is neither stored nor uploaded: %w", d, errs.ErrInvalid)
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("uploaded blob %s: %v: %w", d, err, errs.ErrInvalid)
	}
	defer f.Close()
	// Verified and stored, or refused: either way the upload is done with.
	defer os.Remove(path)
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("uploaded blob %s: %w", d, err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.Mode().IsRegular() || !ok || st.Nlink != 1 {
		// Not a plain file, or linked elsewhere: a private copy it is.
		_, err := s.WriteBlob(d, size, f)
		if err != nil {
			return fmt.Errorf("uploaded %w", err)
		}
		return nil
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("uploaded blob %s: %w", d, err)
	}
	if got := digest.NewDigest(digest.SHA256, h); got != d {
		return fmt.Errorf("uploaded blob %s: content hashes to %s: %w", d, got, errs.ErrInvalid)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("uploaded blob %s: %d bytes, descriptor says %d: %w", d, n, size, errs.ErrInvalid)
	}
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("uploaded blob %s: %w", d, err)
	}
	// Still the file just verified under that name? Then it moves in.
	if now, err := os.Lstat(path); err != nil || !os.SameFile(now, info) {
		return fmt.Errorf("uploaded blob %s: replaced while being verified: %w", d, errs.ErrInvalid)
	}
	if err := os.Rename(path, s.BlobPath(d)); err != nil {
		if !errors.Is(err, syscall.EXDEV) {
			return fmt.Errorf("uploaded blob %s: %w", d, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if _, err := s.WriteBlob(d, size, f); err != nil {
			return fmt.Errorf("uploaded %w", err)
		}
	}
	return nil
}
