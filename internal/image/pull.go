package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
)

// InboxName is the file name a blob is uploaded under in a node's inbox.
func InboxName(d digest.Digest) string { return "sha256-" + d.Encoded() }

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

// takeLoose makes sure the store has blob d, taking it from dir if needed.
func (s *Store) takeLoose(d digest.Digest, size int64, dir string) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	if s.HasBlob(d) {
		return nil
	}
	path := filepath.Join(dir, InboxName(d))
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s is neither stored nor uploaded: %w", d, errs.ErrInvalid)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = s.WriteBlob(d, size, f)
	// Verified and stored, or refused: either way the upload is done with.
	os.Remove(path)
	if err != nil {
		return fmt.Errorf("uploaded %w", err)
	}
	return nil
}
