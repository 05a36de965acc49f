package lint

import (
	"archive/tar"
	"cmp"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// OCI whiteout names, from the image-spec's layer changeset rules.
const (
	whiteoutPrefix   = ".wh."
	whiteoutReserved = ".wh..wh."
	whiteoutOpaque   = ".wh..wh..opq"
)

// change is one entry of a layer: an addition, a whiteout or an opaque marker.
type change struct {
	path   string // clean absolute path the change is about
	entry  entry
	delete bool // whiteout: path and everything under it go
	opaque bool // opaque marker: everything under the directory path goes
}

// Layers computes the image's final file list from its layers (each an
// uncompressed tar stream, bottom layer first), applying OCI whiteouts
// (`.wh.NAME` deletes NAME and everything under it from lower layers; `.wh..wh..opq` hides all lower-layer content of its directory),
// then classifies every remaining entry and reports every ELF file whose
// interpreter or libraries the image lacks. Findings sorted by path, then
// category and name.
//
// As the image-spec requires, whiteouts in a layer affect only lower layers,
// whatever their order in the tar: a layer's own entries survive them.
func Layers(layers []io.Reader) ([]Finding, error) {
	root := &node{}
	for i, r := range layers {
		changes, err := readLayer(r)
		if err != nil {
			return nil, fmt.Errorf("read layer %d: %w", i, err)
		}
		apply(root, changes)
	}
	var findings []Finding
	root.walk(func(p string, e *entry) {
		if f, ok := Classify(p, root.mode(e)); ok {
			findings = append(findings, f)
		}
	})
	findings = append(findings, missingFiles(root)...)
	slices.SortFunc(findings, func(a, b Finding) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(string(a.Category), string(b.Category)), strings.Compare(a.Name, b.Name))
	})
	return findings, nil
}

// apply merges one layer's changes into the tree: whiteouts and opaque
// markers first, so that they hide only what lower layers put there.
func apply(root *node, changes []change) {
	for _, c := range changes {
		switch {
		case c.delete:
			root.remove(c.path)
		case c.opaque:
			root.clear(c.path)
		}
	}
	for _, c := range changes {
		if !c.delete && !c.opaque {
			root.put(c.path, c.entry)
		}
	}
}

// readLayer reads the headers of one uncompressed layer tar, and what the
// loader needs of its regular files.
func readLayer(r io.Reader) ([]change, error) {
	var changes []change
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return changes, nil
		}
		if err != nil {
			return nil, fmt.Errorf("next tar entry: %w", err)
		}
		c, ok := parse(hdr)
		if !ok {
			continue
		}
		if hdr.Typeflag == tar.TypeReg && !c.delete && !c.opaque {
			if c.entry.elf, c.entry.data, err = readContent(tr, c.path, hdr.Size); err != nil {
				return nil, fmt.Errorf("read %s: %w", c.path, err)
			}
		}
		changes = append(changes, c)
	}
}

// parse turns a tar header into a change. It skips the root directory,
// metadata entries, and anything named or inside a directory named with the
// reserved .wh..wh. prefix other than the opaque marker (AUFS keeps its
// bookkeeping, such as .wh..wh.plnk, there).
func parse(hdr *tar.Header) (change, bool) {
	p := path.Clean("/" + hdr.Name)
	dir, base := path.Split(p)
	switch {
	case p == "/" || strings.Contains(dir, "/"+whiteoutReserved):
		return change{}, false
	case base == whiteoutOpaque:
		return change{path: path.Clean(dir), opaque: true}, true
	case strings.HasPrefix(base, whiteoutReserved):
		return change{}, false
	case strings.HasPrefix(base, whiteoutPrefix):
		name := strings.TrimPrefix(base, whiteoutPrefix)
		if name == "" || name == "." || name == ".." {
			return change{}, false
		}
		return change{path: path.Join(dir, name), delete: true}, true
	}
	e := entry{mode: hdr.FileInfo().Mode()}
	switch hdr.Typeflag {
	case tar.TypeLink:
		e.link = path.Clean("/" + hdr.Linkname)
	case tar.TypeSymlink:
		e.symlink = hdr.Linkname
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeDir,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return change{}, false
	}
	return change{path: p, entry: e}, true
}
