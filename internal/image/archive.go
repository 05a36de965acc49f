package image

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image/layer"
)

// archive is an import tar spooled to disk, with the offset of every regular
// file, so blobs can be read in the order the manifests need them rather than
// the order the tar happens to hold them.
type archive struct {
	f       *os.File
	entries map[string]section
}

type section struct{ off, size int64 }

// spool copies r (a tar, possibly gzip- or zstd-compressed) into a temporary
// file in dir and indexes it. max bounds the uncompressed size.
func spool(r io.Reader, dir string, max int64) (*archive, error) {
	f, err := os.CreateTemp(dir, "import-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name()) // the open descriptor keeps it until Close
	a := &archive{f: f, entries: map[string]section{}}
	src := &sourceReader{r: r}
	plain, err := layer.Decompress(bufio.NewReaderSize(src, 64<<10))
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("read archive: %w", src.classify(err))
	}
	defer plain.Close()
	dst := &sinkWriter{w: f}
	n, err := io.Copy(dst, io.LimitReader(plain, max+1))
	if err != nil {
		a.Close()
		if dst.err == nil {
			err = src.classify(err)
		}
		return nil, fmt.Errorf("read archive: %w", err)
	}
	if n > max {
		a.Close()
		return nil, fmt.Errorf("archive is over %d bytes: %w", max, errs.ErrInvalid)
	}
	if err := a.index(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *archive) Close() error { return a.f.Close() }

// posReader tracks the file position through tar's reads and seeks, which
// after tar.Reader.Next is the offset of the entry's data.
type posReader struct {
	f   *os.File
	pos int64
}

func (p *posReader) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	p.pos += int64(n)
	return n, err
}

func (p *posReader) Seek(off int64, whence int) (int64, error) {
	n, err := p.f.Seek(off, whence)
	if err == nil {
		p.pos = n
	}
	return n, err
}

func (a *archive) index() error {
	if _, err := a.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	pr := &posReader{f: a.f}
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: not a valid tar: %v: %w", err, errs.ErrInvalid)
		}
		if h.Typeflag != tar.TypeReg || len(a.entries) > 100000 {
			continue
		}
		a.entries[cleanName(h.Name)] = section{off: pr.pos, size: h.Size}
	}
}

func cleanName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

func (a *archive) has(name string) bool {
	_, ok := a.entries[cleanName(name)]
	return ok
}

func (a *archive) open(name string) (io.Reader, int64, error) {
	s, ok := a.entries[cleanName(name)]
	if !ok {
		return nil, 0, fmt.Errorf("archive has no file %q: %w", name, errs.ErrInvalid)
	}
	return io.NewSectionReader(a.f, s.off, s.size), s.size, nil
}

func (a *archive) readSmall(name string) ([]byte, error) {
	r, size, err := a.open(name)
	if err != nil {
		return nil, err
	}
	if size > maxJSONBlob {
		return nil, fmt.Errorf("archive file %q: over %d bytes: %w", name, maxJSONBlob, errs.ErrInvalid)
	}
	return io.ReadAll(r)
}

// sourceReader remembers whether reading the source itself failed, to
// tell a broken connection or disk from a broken archive.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// classify marks err as bad input unless the source failed: a truncated
// or corrupt compressed stream is the archive's fault.
func (s *sourceReader) classify(err error) error {
	if s.err != nil || errors.Is(err, errs.ErrInvalid) {
		return err
	}
	return fmt.Errorf("%v: %w", err, errs.ErrInvalid)
}

// sinkWriter remembers whether writing the spool failed.
type sinkWriter struct {
	w   io.Writer
	err error
}

func (s *sinkWriter) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	if err != nil {
		s.err = err
	}
	return n, err
}
