package image

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
)

// ArchiveBlob is a blob an archive's images are made of: what an upload
// to a store elsewhere sends.
type ArchiveBlob struct {
	Digest digest.Digest
	Size   int64
}

// Blobs lists every blob of the archive's images (manifests, configs and
// layers, generated ones included), each once, manifests last.
func (ar *Archive) Blobs() ([]ArchiveBlob, error) {
	seen := map[digest.Digest]bool{}
	var out, manifests []ArchiveBlob
	for _, p := range ar.found {
		for d := range p.sources {
			if seen[d] {
				continue
			}
			seen[d] = true
			_, size, err := ar.OpenBlob(d)
			if err != nil {
				return nil, err
			}
			b := ArchiveBlob{Digest: d, Size: size}
			if d == p.manifest {
				manifests = append(manifests, b)
			} else {
				out = append(out, b)
			}
		}
	}
	slices.SortFunc(out, func(a, b ArchiveBlob) int { return cmp.Compare(a.Size, b.Size) })
	return append(out, manifests...), nil
}

// OpenBlob reads a blob of the archive's images.
func (ar *Archive) OpenBlob(d digest.Digest) (io.ReadSeeker, int64, error) {
	for _, p := range ar.found {
		if b := p.generated[d]; b != nil {
			return bytes.NewReader(b), int64(len(b)), nil
		}
		if src, ok := p.sources[d]; ok && src != "" {
			r, size, err := ar.a.open(src)
			if err != nil {
				return nil, 0, err
			}
			return r.(io.ReadSeeker), size, nil
		}
	}
	return nil, 0, fmt.Errorf("blob %s is not in the archive: %w", d, errs.ErrNotFound)
}
