package lint

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/moatcloud/moat/internal/image/ldso"
)

// Limits on what readContent holds. ELF files debug/elf cannot stream, so
// each is read whole; past maxInMemory it goes through a temporary file
// rather than the heap. A cache past maxCache is ignored: real ones hold a
// few thousand entries in well under a megabyte.
const (
	maxInMemory = 32 << 20
	maxCache    = 16 << 20
)

// readContent reads what the loader rule needs of the regular file at p
// from r, its size bytes: what an ELF file says to the loader, or the
// bytes of a file named ld.so.cache. A file that starts like ELF but does
// not parse is not an object the loader could use, and gives neither.
func readContent(r io.Reader, p string, size int64) (*ldso.Object, []byte, error) {
	if path.Base(p) == "ld.so.cache" {
		if size > maxCache {
			return nil, nil, nil
		}
		b, err := readAll(r, size)
		return nil, b, err
	}
	head := make([]byte, len(elf.ELFMAG))
	if size < int64(len(head)) {
		return nil, nil, nil
	}
	if _, err := io.ReadFull(r, head); err != nil || string(head) != elf.ELFMAG {
		return nil, nil, err
	}
	ra, done, err := readerAt(io.MultiReader(bytes.NewReader(head), r), size)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	obj, err := ldso.Read(ra)
	if err != nil {
		return nil, nil, nil
	}
	return obj, nil, nil
}

// readerAt gives random access to the size bytes of r, from memory or,
// past maxInMemory, from a temporary file that done removes.
func readerAt(r io.Reader, size int64) (ra io.ReaderAt, done func(), err error) {
	if size <= maxInMemory {
		b, err := readAll(r, size)
		if err != nil {
			return nil, nil, err
		}
		return bytes.NewReader(b), func() {}, nil
	}
	f, err := os.CreateTemp("", "moat-lint-elf-")
	if err != nil {
		return nil, nil, fmt.Errorf("spool a large ELF file: %w", err)
	}
	done = func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("spool a large ELF file: %w", err)
	}
	return f, done, nil
}

// readAll reads the size bytes of r, growing its buffer as they come rather
// than trusting a tar header's size up front.
func readAll(r io.Reader, size int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, size))
	if err == nil && int64(len(b)) != size {
		err = io.ErrUnexpectedEOF
	}
	return b, err
}
