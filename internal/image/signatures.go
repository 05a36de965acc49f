package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/sign"
)

// Signatures live beside the blobs, one file per signature, named by the
// signature's own hash so the same one is never stored twice:
//
//	signatures/<manifest hex>/<sha256 of the signature, 16 hex>.sig

func (s *Store) signatureDir(m digest.Digest) string {
	return filepath.Join(s.root, "signatures", m.Encoded())
}

// AddSignature keeps a signature of an image, once it has checked that it
// is an image signature over this manifest by the key it names (whether
// that key is trusted is for whoever runs the image to decide).
func (s *Store) AddSignature(m digest.Digest, armored []byte) (added bool, err error) {
	if err := checkDigest(m); err != nil {
		return false, err
	}
	if _, err := sign.Check(armored, m); err != nil {
		return false, fmt.Errorf("signature for %s: %v: %w", m, err, errs.ErrInvalid)
	}
	sum := sha256.Sum256(armored)
	path := filepath.Join(s.signatureDir(m), hex.EncodeToString(sum[:8])+".sig")
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	return true, writeFileAtomic(path, armored)
}

// Signatures returns an image's stored signatures, armored.
func (s *Store) Signatures(m digest.Digest) ([][]byte, error) {
	if err := checkDigest(m); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.signatureDir(m))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".sig" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.signatureDir(m), e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Signers returns the fingerprints of the keys that signed an image.
func (s *Store) Signers(m digest.Digest) []string {
	sigs, _ := s.Signatures(m)
	var out []string
	for _, b := range sigs {
		if sig, err := sign.Parse(b); err == nil {
			out = append(out, sign.Fingerprint(sig.PublicKey))
		}
	}
	sort.Strings(out)
	return out
}

func (s *Store) removeSignatures(m digest.Digest) {
	os.RemoveAll(s.signatureDir(m))
}
