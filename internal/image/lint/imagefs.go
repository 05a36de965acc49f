package lint

import (
	"errors"
	"io/fs"
	"strings"

	"github.com/moatcloud/moat/internal/image/ldso"
)

// maxSymlinks bounds how many symlinks resolve follows for one path, as
// Linux does before it gives up with ELOOP.
const maxSymlinks = 40

var (
	errLoop  = errors.New("too many levels of symbolic links")
	errIsDir = errors.New("is a directory")
)

// resolve returns the node at the absolute path p as open(2) in the
// container finds it: following symlinks in every component, absolute
// targets from the image's root, ".." from where a symlink led and never
// above the root.
func (n *node) resolve(p string) (*node, error) {
	var dirs []*node // the path walked so far, below n
	todo := strings.Split(p, "/")
	for hops := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(dirs) > 0 {
				dirs = dirs[:len(dirs)-1]
			}
			continue
		}
		dir := n
		if len(dirs) > 0 {
			dir = dirs[len(dirs)-1]
		}
		kid := dir.kids[name]
		if kid == nil {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		if kid.entry == nil || kid.entry.mode.Type() != fs.ModeSymlink {
			dirs = append(dirs, kid)
			continue
		}
		if hops++; hops > maxSymlinks {
			return nil, &fs.PathError{Op: "open", Path: p, Err: errLoop}
		}
		if strings.HasPrefix(kid.entry.symlink, "/") {
			dirs = dirs[:0]
		}
		todo = append(strings.Split(kid.entry.symlink, "/"), todo...)
	}
	if len(dirs) == 0 {
		return n, nil
	}
	return dirs[len(dirs)-1], nil
}

// imageFS is the image's merged file tree as the loader in a container
// sees it.
type imageFS struct{ root *node }

// Object implements ldso.FS.
func (f imageFS) Object(name string) (*ldso.Object, error) {
	n, err := f.root.resolve(name)
	if err != nil {
		return nil, err
	}
	if n.entry == nil {
		return nil, errIsDir // a directory only its children imply
	}
	e := f.root.inode(n.entry)
	switch {
	case e.mode.IsDir():
		return nil, errIsDir
	case e.elf == nil:
		return nil, ldso.ErrNotELF
	}
	return e.elf, nil
}

// cache returns the image's own ld.so.cache; none if it has none or one
// ld.so could not read either, as ld.so then goes on without it.
func (f imageFS) cache() ldso.Cache {
	n, err := f.root.resolve(ldso.CachePath)
	if err != nil || n.entry == nil {
		return nil
	}
	c, err := ldso.ParseCache(f.root.inode(n.entry).data)
	if err != nil {
		return nil
	}
	return c
}
