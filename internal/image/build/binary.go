package build

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image/ldso"
)

// ParseAddBinary parses the --add-binary flag value PATH[:DST]. DST
// defaults to PATH, which must then be absolute: a program found at
// /usr/bin/caddy goes to /usr/bin/caddy, where its documentation and
// configuration expect it.
func ParseAddBinary(s string) (File, error) {
	field := fmt.Sprintf("--add-binary %q", s)
	src, dst, hasDst := strings.Cut(s, ":")
	switch {
	case src == "" || (hasDst && (dst == "" || strings.Contains(dst, ":"))):
		return File{}, errs.Invalid(field, "want PATH[:DST]")
	case !hasDst && !path.IsAbs(src):
		return File{}, errs.Invalid(field, "give where it goes in the image, e.g. %s:/%s", src, path.Base(src))
	case !hasDst:
		dst = path.Clean(src)
	}
	if err := checkDst(dst); err != nil {
		return File{}, errs.Invalid(field, "%v", err)
	}
	return File{Src: src, Dst: dst}, nil
}

// binaryFiles returns the files the image needs to run each program of
// bins: the program at its Dst, with its interpreter and libraries as the
// build machine's loader finds them, each at the path the image's loader
// will open. A file several programs need is returned once.
func binaryFiles(bins []File) ([]File, error) {
	if len(bins) == 0 {
		return nil, nil
	}
	cache, err := ldso.HostCache()
	if err != nil {
		return nil, fmt.Errorf("add binaries: %w", err)
	}
	var out []File
	from := map[string]string{} // real source by destination
	for _, bin := range bins {
		real, err := realPath(bin.Src)
		if err != nil {
			return nil, fmt.Errorf("add binary %s: %w", bin.Src, err)
		}
		files, err := programFiles(ldso.Host{}, cache, bin, real)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			src, err := realPath(f.Src)
			if err != nil {
				return nil, fmt.Errorf("add binary %s: %w", bin.Src, err)
			}
			if prev, ok := from[f.Dst]; ok {
				if prev != src {
					return nil, errs.Invalid("--add-binary "+bin.Src, "needs %s at %s, where another binary needs %s", src, f.Dst, prev)
				}
				continue
			}
			from[f.Dst] = src
			out = append(out, f)
		}
	}
	return out, nil
}

// realPath is p absolute and without symlinks, as the kernel tells ld.so
// where the program it starts is: $ORIGIN is relative to it.
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// programFiles resolves the program bin, whose source has the real path
// real, against fsys and cache, and places what it needs in the image.
func programFiles(fsys ldso.FS, cache ldso.Cache, bin File, real string) ([]File, error) {
	field := "--add-binary " + bin.Src
	res, err := ldso.Resolve(fsys, cache, real)
	if errors.Is(err, ldso.ErrNotELF) {
		return nil, errs.Invalid(field, "not an ELF program; add other files with --add")
	}
	if err != nil {
		return nil, fmt.Errorf("add binary %s: %w", bin.Src, err)
	}
	if len(res.Missing) > 0 {
		var lines []string
		for _, m := range res.Missing {
			lines = append(lines, m.String())
		}
		return nil, errs.Invalid(field, "the loader would not find what it needs: %s", strings.Join(lines, "; "))
	}
	return place(res, bin, real)
}

// place maps what Resolve found on the build machine to files of the
// image. The image gets a regular file at each path its loader opens, so
// it needs none of the build machine's symlinks (/lib64 -> /usr/lib64,
// /lib -> usr/lib, libz.so.1 -> libz.so.1.2.13). A library found through
// $ORIGIN goes to the same place relative to where its owner is in the
// image. One found through the cache, in a directory the image's loader
// does not search by default, goes to the first default directory: the
// image has no cache, which would list the build machine's libraries.
func place(res ldso.Result, bin File, real string) ([]File, error) {
	files := []File{bin}
	in := map[string]string{real: bin.Dst} // image path by build path
	std := ldso.DefaultDirs(res.Program.Class, res.Program.Machine)
	for _, l := range res.Libs {
		var dst string
		switch l.How {
		case ldso.ViaRPath, ldso.ViaRunPath, ldso.ViaPath:
			owner, ok := in[l.Owner]
			if !ok {
				return nil, fmt.Errorf("add binary %s: %s: no image path for %s", bin.Src, l.Path, l.Owner)
			}
			list := l.Name
			if l.How != ldso.ViaPath {
				list = l.Dir + "/" + l.Name
			}
			dst = path.Clean(ldso.Expand(list, path.Dir(owner)))
		case ldso.ViaCache:
			dst = l.Path
			if !slices.Contains(std, path.Dir(l.Path)) {
				dst = std[0] + "/" + l.Name
			}
		default:
			dst = path.Clean(l.Path)
		}
		if err := checkDst(dst); err != nil {
			return nil, errs.Invalid("--add-binary "+bin.Src, "%s needs %s: %v", l.Needer, l.Name, err)
		}
		in[l.Path] = dst
		files = append(files, File{Src: l.Path, Dst: dst})
	}
	return files, nil
}
