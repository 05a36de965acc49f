package build

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// gzipLevel is fixed so the same tar always compresses to the same bytes
// (with the same Go release: compress/flate output is not promised across
// releases, the diff_id is).
const gzipLevel = gzip.BestCompression

// writeLayer writes entries as a gzip-compressed tar to w and returns the
// digest of the uncompressed tar (the diff_id). Every header gets mtime,
// no names for the owners and no access or change times.
func writeLayer(ctx context.Context, w io.Writer, entries []*entry, mtime time.Time) (digest.Digest, error) {
	// A zero gzip.Header: no file name, modification time 0.
	gz, err := gzip.NewWriterLevel(w, gzipLevel)
	if err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	diff := digest.SHA256.Digester()
	tw := tar.NewWriter(io.MultiWriter(gz, diff.Hash()))
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if err := writeEntry(tw, e, mtime); err != nil {
			return "", fmt.Errorf("layer %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	if err := gz.Close(); err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	return diff.Digest(), nil
}

// writeEntry writes one entry. The header leaves Format unset so archive/tar
// uses USTAR and switches to PAX only for what USTAR cannot hold.
func writeEntry(tw *tar.Writer, e *entry, mtime time.Time) error {
	hdr := &tar.Header{
		Typeflag: e.typ,
		Name:     strings.TrimPrefix(e.name, "/"),
		Linkname: e.link,
		Mode:     e.mode,
		Uid:      e.uid,
		Gid:      e.gid,
		ModTime:  mtime,
	}
	if e.typ == tar.TypeDir {
		hdr.Name += "/"
	}
	if e.typ != tar.TypeReg {
		return tw.WriteHeader(hdr)
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is no longer a regular file", e.src)
	}
	hdr.Size = fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	return copyExactly(tw, f, hdr.Size)
}

// copyExactly copies size bytes of f and fails if f changes length meanwhile,
// which would otherwise give a layer that does not match the file.
func copyExactly(w io.Writer, f *os.File, size int64) error {
	if _, err := io.CopyN(w, f, size); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s shrank while being read", f.Name())
		}
		return err
	}
	var b [1]byte
	if n, _ := f.Read(b[:]); n > 0 {
		return fmt.Errorf("%s grew while being read", f.Name())
	}
	return nil
}
