package lint

import (
	"debug/elf"
	"path"
	"slices"

	"github.com/moatcloud/moat/internal/image/ldso"
)

// missingFiles resolves every ELF program and shared library in the tree as
// the image's loader would, against the image's own files and ld.so.cache,
// and reports each interpreter or library it would not find, on the file
// that needs it.
//
// Programs (files with an interpreter) are resolved first, each with all it
// loads, so that a library is judged with the DT_RPATH its program lends
// it; a library no program loads (a plugin, something dlopen'ed) is then
// resolved on its own.
func missingFiles(root *node) []Finding {
	fsys := imageFS{root}
	cache := fsys.cache()
	progs, libs := elfFiles(root)
	reached := map[*ldso.Object]bool{}
	seen := map[Finding]bool{}
	var out []Finding
	for _, p := range append(progs, libs...) {
		obj, err := fsys.Object(p)
		if err != nil || (obj.Interp == "" && reached[obj]) {
			continue
		}
		res, err := ldso.Resolve(fsys, cache, p)
		if err != nil {
			continue // p was just read: cannot happen
		}
		for _, l := range res.Libs {
			reached[l.Object] = true
		}
		for _, m := range res.Missing {
			f := Finding{Path: path.Clean(m.Needer), Category: MissingLibrary, Name: m.Name}
			if m.Interp {
				f.Category = MissingInterpreter
			}
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// elfFiles returns the paths of the tree's ELF programs and of its other
// ELF executables and shared objects, each sorted.
func elfFiles(root *node) (progs, libs []string) {
	root.walk(func(p string, e *entry) {
		obj := root.inode(e).elf
		switch {
		case obj == nil || (obj.Type != elf.ET_EXEC && obj.Type != elf.ET_DYN):
		case obj.Interp != "":
			progs = append(progs, p)
		default:
			libs = append(libs, p)
		}
	})
	slices.Sort(progs)
	slices.Sort(libs)
	return progs, libs
}
