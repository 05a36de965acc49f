package layer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// ErrUnsupportedCompression is returned for an xz-compressed layer: OCI
// layers are gzip, zstd or plain tar, and no tar starts with xz's magic,
// so saying so beats a tar header error later.
var ErrUnsupportedCompression = errors.New("unsupported layer compression")

// Decompress returns the uncompressed stream of r, which may be gzip, zstd or
// plain. It sniffs the magic bytes rather than trusting a media type:
// docker save archives and some tools label layers inconsistently.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	head, err := br.Peek(len(xzMagic))
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("sniff compression: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	case bytes.HasPrefix(head, xzMagic):
		return nil, fmt.Errorf("xz: %w", ErrUnsupportedCompression)
	}
	return io.NopCloser(br), nil
}
