// Package layer unpacks OCI image layers into directories that overlayfs can
// stack, and refuses anything that could write outside that directory.
//
// Every write goes through an os.Root opened on the target directory, so a
// symlink planted by one entry can never carry a later entry outside it. OCI
// whiteouts (".wh.NAME", ".wh..wh..opq") are turned into their overlayfs
// forms: a 0:0 character device and the trusted.overlay.opaque xattr.
package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// Default limits, used when the matching Options field is zero.
const (
	DefaultMaxBytes   = 8 << 30
	DefaultMaxEntries = 1 << 20
)

// Options bounds what one layer may contain.
type Options struct {
	MaxBytes   int64 // total bytes of regular-file content allowed; 0 means DefaultMaxBytes (8 GiB)
	MaxEntries int   // number of tar entries allowed; 0 means DefaultMaxEntries (1<<20)
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	return o
}

// Stats says how much of the layer was unpacked: tar entries read and bytes
// of regular-file content written.
type Stats struct {
	Entries int
	Bytes   int64
}

// Unpack reads an uncompressed tar layer from r and writes it into dir, which must exist and be empty.
//
// On error the directory holds a partial layer; the caller discards it.
// Refusals (unsafe names, paths through symlinks that leave dir, devices,
// setuid files, limits) wrap errs.ErrInvalid; every error about an entry
// names it. Ownership is applied only when running as root.
func Unpack(ctx context.Context, r io.Reader, dir string, opts Options) (Stats, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Stats{}, fmt.Errorf("open layer dir: %w", err)
	}
	defer root.Close()
	if err := checkEmpty(root); err != nil {
		return Stats{}, fmt.Errorf("layer dir %s: %w", dir, err)
	}
	u := &unpacker{
		root:     root,
		opts:     opts.withDefaults(),
		chown:    os.Geteuid() == 0,
		dirTimes: map[string]dirTimes{},
		removed:  map[string]int{},
	}
	err = u.run(ctx, tar.NewReader(r))
	if err == nil {
		err = u.finishDirs()
	}
	return u.stats, explain(err, escapeErr(root))
}

func checkEmpty(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("not empty (has %q)", names[0])
}

// unpacker holds the state of one Unpack call.
type unpacker struct {
	root     *os.Root
	opts     Options
	chown    bool // only root may give files away; rootless unpacks keep the caller's ids
	stats    Stats
	dirTimes map[string]dirTimes // applied last: writing into a directory changes its mtime
	removed  map[string]int      // path -> number of the entry that last removed it
}

func (u *unpacker) run(ctx context.Context, tr *tar.Reader) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("unpack layer: %w", err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read layer after %d entries: %w", u.stats.Entries, err)
		}
		u.stats.Entries++
		if u.stats.Entries > u.opts.MaxEntries {
			return refuse(hdr.Name, "layer has more than %d entries", u.opts.MaxEntries)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
}

// entry writes one tar entry. PAX xattrs (hdr.PAXRecords "SCHILY.xattr.*",
// hdr.Xattrs) are deliberately ignored: moat runs minimal images without file
// capabilities or security labels, and honouring them would let a layer grant
// privileges (security.capability) or set trusted.overlay.* itself.
func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // global PAX records (e.g. a git commit id), not a file
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if kind, dir, hidden := whiteoutKind(name); kind != notWhiteout {
		return u.whiteout(hdr.Name, kind, dir, hidden)
	}
	if name == "." && hdr.Typeflag != tar.TypeDir {
		return refuse(hdr.Name, "only a directory may replace the layer root")
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return u.writeFile(hdr, name, r)
	case tar.TypeDir:
		return u.writeDir(hdr, name)
	case tar.TypeSymlink:
		return u.writeSymlink(hdr, name)
	case tar.TypeLink:
		return u.writeLink(hdr, name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return refuse(hdr.Name, "device nodes are not allowed")
	default:
		return refuse(hdr.Name, "unsupported entry type %q", hdr.Typeflag)
	}
}
