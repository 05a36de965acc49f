package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
)

// parentMode is the mode of the directories Build makes up to hold the added
// paths (/usr, /usr/local, ...). They belong to root, not Options.UID, so the
// program cannot write into /etc or /usr just because it owns a file there.
const parentMode = 0o755

// entry is one path in the layer.
type entry struct {
	name     string // absolute, clean path in the image
	typ      byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode     int64  // permission bits only
	uid, gid int
	src      string // host path holding a regular file's content
	link     string // symlink target, verbatim
	from     string // the --add source that produced the entry, for errors
}

// tree is the layer's content by image path.
type tree map[string]*entry

// collect reads the sources of files (following a symlink given as a source,
// keeping symlinks found inside a directory) and returns every layer entry,
// implied parent directories included, in the order they go into the tar.
func collect(ctx context.Context, files []File, uid, gid int) (tree, []*entry, error) {
	t := tree{}
	for _, f := range files {
		if err := t.addFile(ctx, f, uid, gid); err != nil {
			return nil, nil, err
		}
	}
	if err := t.addParents(); err != nil {
		return nil, nil, err
	}
	return t, t.sorted(), nil
}

func (t tree) addFile(ctx context.Context, f File, uid, gid int) error {
	fi, err := os.Stat(f.Src)
	if err != nil {
		return fmt.Errorf("add %s: %w", f.Src, err)
	}
	switch {
	case fi.IsDir():
		return t.addDir(ctx, f, uid, gid)
	case fi.Mode().IsRegular():
		if f.Dst == "/" {
			return errs.Invalid(f.Src, "a file cannot be added as /; give a path such as /app")
		}
		e, err := regular(f.Src, fi.Mode(), f.Mode)
		if err != nil {
			return err
		}
		e.name, e.uid, e.gid, e.from = f.Dst, uid, gid, f.Src
		return t.add(e)
	default:
		return refuse(f.Src, fi.Mode())
	}
}

// addDir adds the tree under f.Src at f.Dst. The walk order does not matter:
// entries are sorted before they are written.
func (t tree) addDir(ctx context.Context, f File, uid, gid int) error {
	root, err := filepath.EvalSymlinks(f.Src)
	if err != nil {
		return fmt.Errorf("add %s: %w", f.Src, err)
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("add %s: %w", p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("add %s: %w", p, err)
		}
		name := path.Join(f.Dst, filepath.ToSlash(rel))
		if name == "/" {
			return nil // the image root is implied
		}
		e, err := walked(p, d, f.Mode)
		if err != nil {
			return err
		}
		e.name, e.uid, e.gid, e.from = name, uid, gid, f.Src
		return t.add(e)
	})
}

// walked makes the entry for p found in a directory walk.
func walked(p string, d fs.DirEntry, force fs.FileMode) (*entry, error) {
	fi, err := d.Info()
	if err != nil {
		return nil, fmt.Errorf("add %s: %w", p, err)
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		return &entry{typ: tar.TypeDir, mode: int64(m.Perm())}, nil
	case m.IsRegular():
		return regular(p, m, force)
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return nil, fmt.Errorf("add %s: %w", p, err)
		}
		return &entry{typ: tar.TypeSymlink, mode: 0o777, link: target}, nil
	default:
		return nil, refuse(p, m)
	}
}

// regular makes the entry for the regular file p with mode m, forcing the
// permission bits to force unless it is 0.
func regular(p string, m, force fs.FileMode) (*entry, error) {
	if m&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
		return nil, errs.Invalid(p, "setuid/setgid files are refused; copy it without those bits (chmod u-s,g-s)")
	}
	perm := m.Perm()
	if force != 0 {
		perm = force.Perm()
	}
	return &entry{typ: tar.TypeReg, mode: int64(perm), src: p}, nil
}

func refuse(p string, m fs.FileMode) error {
	kind := "irregular file"
	switch {
	case m&fs.ModeCharDevice != 0:
		kind = "character device"
	case m&fs.ModeDevice != 0:
		kind = "device"
	case m&fs.ModeSocket != 0:
		kind = "socket"
	case m&fs.ModeNamedPipe != 0:
		kind = "named pipe"
	}
	return errs.Invalid(p, "is a %s; only regular files, directories and symlinks can be added", kind)
}

func (t tree) add(e *entry) error {
	if old, ok := t[e.name]; ok {
		return errs.Invalid(e.name, "added twice (from %s and from %s)", old.from, e.from)
	}
	t[e.name] = e
	return nil
}

// addParents adds every missing ancestor directory of the entries and checks
// that no entry sits below a file or symlink.
func (t tree) addParents() error {
	names := make([]string, 0, len(t))
	for name := range t {
		names = append(names, name)
	}
	slices.Sort(names) // the first conflict reported must not depend on map order
	for _, name := range names {
		for dir := path.Dir(name); dir != "/"; dir = path.Dir(dir) {
			p, ok := t[dir]
			if !ok {
				t[dir] = &entry{name: dir, typ: tar.TypeDir, mode: parentMode, from: "parent of " + name}
				continue
			}
			if p.typ != tar.TypeDir {
				return errs.Invalid(name, "cannot be added: %s (from %s) is not a directory", dir, p.from)
			}
		}
	}
	return nil
}

// sorted returns the entries ordered path component by component, so every
// directory comes before its contents and the order is the same on every run.
func (t tree) sorted() []*entry {
	out := make([]*entry, 0, len(t))
	for _, e := range t {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int {
		return slices.Compare(strings.Split(a.name, "/"), strings.Split(b.name, "/"))
	})
	return out
}
