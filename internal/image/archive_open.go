package image

import (
	"bufio"
	"fmt"
	"io"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image/layer"
)

// Archive is an image archive read but not stored: for looking inside
// (lint) and as the first step of Import.
type Archive struct {
	a     *archive
	found []pending
}

// OpenArchive spools r (an OCI layout or docker save archive, as a tar,
// possibly compressed) into tmpDir and finds its images for this platform.
func OpenArchive(r io.Reader, tmpDir string) (*Archive, error) {
	a, err := spool(r, tmpDir, MaxImportBytes)
	if err != nil {
		return nil, err
	}
	var found []pending
	switch {
	case a.has("index.json"):
		found, err = ociImages(a)
	case a.has("manifest.json"):
		found, err = dockerImages(a)
	default:
		err = fmt.Errorf("not an OCI image layout or docker save archive (no index.json or manifest.json): %w", errs.ErrInvalid)
	}
	if err == nil && len(found) == 0 {
		err = fmt.Errorf("the archive holds no linux/%s image: %w", hostArch(), errs.ErrInvalid)
	}
	if err != nil {
		a.Close()
		return nil, err
	}
	return &Archive{a: a, found: found}, nil
}

// Close removes the spooled copy.
func (ar *Archive) Close() error { return ar.a.Close() }

// Images lists the archive's images.
func (ar *Archive) Images() []Image {
	out := make([]Image, 0, len(ar.found))
	for _, p := range ar.found {
		img := p.img
		img.Name, img.Digest = p.name, p.manifest
		out = append(out, img)
	}
	return out
}

// OpenLayer returns a layer of one of the archive's images, uncompressed.
func (ar *Archive) OpenLayer(l Layer) (io.ReadCloser, error) {
	for _, p := range ar.found {
		if src, ok := p.sources[l.Digest]; ok && src != "" {
			r, _, err := ar.a.open(src)
			if err != nil {
				return nil, err
			}
			return layer.Decompress(bufio.NewReader(r))
		}
	}
	return nil, fmt.Errorf("layer %s is not in the archive: %w", l.Digest, errs.ErrNotFound)
}

// OpenLayer returns a stored layer blob, uncompressed.
func (s *Store) OpenLayer(l Layer) (io.ReadCloser, error) {
	f, err := s.OpenBlob(l.Digest)
	if err != nil {
		return nil, err
	}
	rc, err := layer.Decompress(bufio.NewReader(f))
	if err != nil {
		f.Close()
		return nil, err
	}
	return closeBoth{rc, f}, nil
}

type closeBoth struct {
	io.ReadCloser
	f io.Closer
}

func (c closeBoth) Close() error {
	c.ReadCloser.Close()
	return c.f.Close()
}
