package lint

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Magic bytes at the start of compressed streams.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// ErrUnsupportedCompression is returned by Open for an xz-compressed layer:
// OCI layers are gzip, zstd or plain tar, and no real tar starts with xz's
// magic, so saying so beats a tar header error later.
var ErrUnsupportedCompression = errors.New("unsupported layer compression")

// Open returns an uncompressed reader for a layer blob of any of the OCI layer media types (gzip, zstd or plain tar), sniffing the magic bytes rather than trusting the media type.
//
// Anything that starts with neither magic is returned as it is, to be read as
// a plain tar. Closing the result releases the decompressor; it does not
// close r.
func Open(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(len(xzMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("sniff layer compression: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open gzip layer: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("open zstd layer: %w", err)
		}
		return zr.IOReadCloser(), nil
	case bytes.HasPrefix(head, xzMagic):
		return nil, fmt.Errorf("open layer: xz: %w", ErrUnsupportedCompression)
	}
	return io.NopCloser(br), nil
}
