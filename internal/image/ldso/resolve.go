package ldso

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// How says where the loader found a file.
type How string

// The places a file is found, in the order ld.so searches them.
const (
	ViaInterp  How = "PT_INTERP"
	ViaPath    How = "path" // a DT_NEEDED entry with a slash, opened as it is
	ViaRPath   How = "DT_RPATH"
	ViaRunPath How = "DT_RUNPATH"
	ViaCache   How = "ld.so.cache"
	ViaDefault How = "default directory"
)

// Lib is one file the loader maps for a program.
type Lib struct {
	Name   string  // as asked for: the DT_NEEDED entry, or the PT_INTERP path
	Path   string  // where the loader opens it
	How    How     // where it was found
	Dir    string  // ViaRPath, ViaRunPath: the directory as written, $ORIGIN unexpanded
	Owner  string  // ViaRPath, ViaRunPath, ViaPath: the object whose directory $ORIGIN stands for
	Needer string  // the object that needs it
	Object *Object // what Path holds
}

// Missing is a file the loader would not find.
type Missing struct {
	Needer   string   // the object that needs it
	Name     string   // the DT_NEEDED entry, or the PT_INTERP path
	Interp   bool     // Name is the program's interpreter
	Searched []string // where the loader looked, and why candidates did not do
}

func (m Missing) String() string {
	if m.Interp {
		return fmt.Sprintf("%s needs its interpreter %s: %s", m.Needer, m.Name, strings.Join(m.Searched, ", "))
	}
	return fmt.Sprintf("%s needs %s: not found in %s", m.Needer, m.Name, strings.Join(m.Searched, ", "))
}

// Result is what Resolve found.
type Result struct {
	Program *Object
	Libs    []Lib     // the interpreter first, then the libraries breadth first, as ld.so maps them
	Missing []Missing // each missing name once, for the first object that needs it
}

// Resolve finds the interpreter and every library the program at prog
// needs, transitively, as glibc's ld.so does for a program it starts: a
// name already loaded (by name, soname or path) is not searched again; a
// name with a slash is opened as it is; any other is looked for in the
// DT_RPATH of the object and of the objects that loaded it (unless the
// object has a DT_RUNPATH), then its DT_RUNPATH, then the cache, then the
// default directories for the program's machine. $ORIGIN is the directory
// of the object whose path list holds it; prog should have its symlinks
// resolved, as the kernel gives ld.so the program's real path. Candidates
// whose ELF class or machine differ from the program's are skipped.
// LD_LIBRARY_PATH, hwcap subdirectories and $LIB or $PLATFORM are not
// considered: an image's programs start without them.
//
// An error means prog itself could not be read; what the loader would not
// find is listed in Result.Missing.
func Resolve(fsys FS, cache Cache, prog string) (Result, error) {
	obj, err := fsys.Object(prog)
	if err != nil {
		return Result{}, err
	}
	r := &resolver{fsys: fsys, cache: cache, main: obj, known: map[string]bool{}, paths: map[string]bool{prog: true}, res: Result{Program: obj}}
	root := &loaded{path: prog, obj: obj}
	if obj.Interp != "" {
		r.interp(root)
	}
	for queue := []*loaded{root}; len(queue) > 0; queue = queue[1:] {
		n := queue[0]
		for _, name := range n.obj.Needed {
			if r.known[name] {
				continue
			}
			if kid := r.need(n, name); kid != nil {
				queue = append(queue, kid)
			}
		}
	}
	return r.res, nil
}

// loaded is an object in the program's link map; loader is the object
// whose DT_NEEDED brought it in, nil for the program.
type loaded struct {
	path   string
	obj    *Object
	loader *loaded
}

type resolver struct {
	fsys  FS
	cache Cache
	main  *Object
	known map[string]bool // names and sonames already loaded or reported missing
	paths map[string]bool // paths already loaded
	res   Result
}

func (r *resolver) interp(root *loaded) {
	p := root.obj.Interp
	var obj *Object
	why := "not an absolute path"
	if path.IsAbs(p) {
		obj, why = r.open(p, true)
	}
	if why != "" {
		r.res.Missing = append(r.res.Missing, Missing{Needer: root.path, Name: p, Interp: true, Searched: []string{why}})
		return
	}
	r.res.Libs = append(r.res.Libs, Lib{Name: p, Path: p, How: ViaInterp, Needer: root.path, Object: obj})
	r.register(p, p, obj)
}

// need looks for name on behalf of n and records what it found; it returns
// the newly loaded object, nil if none.
func (r *resolver) need(n *loaded, name string) *loaded {
	var searched []string
	for _, c := range r.candidates(n, name) {
		if c.path == "" { // a place with nothing to open
			searched = append(searched, c.place)
			continue
		}
		if r.paths[c.path] {
			r.known[name] = true // another name for a loaded file
			return nil
		}
		obj, why := r.open(c.path, false)
		if why == "" {
			lib := Lib{Name: name, Path: c.path, How: c.how, Dir: c.dir, Needer: n.path, Object: obj}
			if c.owner != nil {
				lib.Owner = c.owner.path
			}
			r.res.Libs = append(r.res.Libs, lib)
			r.register(name, c.path, obj)
			return &loaded{path: c.path, obj: obj, loader: n}
		}
		if why == notThere {
			why = c.place
		} else {
			why = c.path + " (" + why + ")"
		}
		if !slices.Contains(searched, why) {
			searched = append(searched, why)
		}
	}
	r.res.Missing = append(r.res.Missing, Missing{Needer: n.path, Name: name, Searched: searched})
	r.known[name] = true
	return nil
}

func (r *resolver) register(name, p string, obj *Object) {
	r.known[name], r.paths[p] = true, true
	if obj.Soname != "" {
		r.known[obj.Soname] = true
	}
}

// notThere is open's reason for a file that does not exist.
const notThere = "not there"

// open reads the object at p and says why the loader could not use it, ""
// if it can.
func (r *resolver) open(p string, interp bool) (*Object, string) {
	obj, err := r.fsys.Object(p)
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, notThere
	case errors.As(err, &pe):
		return nil, pe.Err.Error()
	case err != nil:
		return nil, err.Error()
	case obj.Class != r.main.Class || obj.Machine != r.main.Machine:
		return nil, fmt.Sprintf("%s %s, want %s %s", obj.Class, obj.Machine, r.main.Class, r.main.Machine)
	case obj.Type != elf.ET_DYN && !(interp && obj.Type == elf.ET_EXEC):
		return nil, fmt.Sprintf("%s, not a shared object", obj.Type)
	}
	return obj, ""
}

// candidate is one path the loader tries for a name.
type candidate struct {
	path  string // "" when there is nothing to open
	how   How
	dir   string  // the path list entry as written
	owner *loaded // whose $ORIGIN dir is relative to
	place string  // where this looked, for Missing.Searched
}

func (r *resolver) candidates(n *loaded, name string) []candidate {
	if strings.Contains(name, "/") {
		p := Expand(name, origin(n.path))
		if !path.IsAbs(p) {
			return []candidate{{place: p + " (relative to the working directory, which is not known here)"}}
		}
		return []candidate{{path: p, how: ViaPath, owner: n, place: p}}
	}
	var cs []candidate
	if n.obj.RunPath == nil {
		for l := n; l != nil; l = l.loader {
			cs = appendDirs(cs, l, l.obj.RPath, ViaRPath, name)
		}
	}
	cs = appendDirs(cs, n, n.obj.RunPath, ViaRunPath, name)
	cached := r.cache.Lookup(name)
	for _, p := range cached {
		cs = append(cs, candidate{path: p, how: ViaCache, place: p + " (from " + CachePath + ")"})
	}
	if len(r.cache) > 0 && len(cached) == 0 {
		cs = append(cs, candidate{place: CachePath})
	}
	for _, d := range DefaultDirs(r.main.Class, r.main.Machine) {
		cs = append(cs, candidate{path: d + "/" + name, how: ViaDefault, place: d})
	}
	return cs
}

// appendDirs adds name in each of dirs, an object's DT_RPATH or DT_RUNPATH.
// Empty and relative entries, which mean the working directory, are left
// out: a container's working directory is not known here.
func appendDirs(cs []candidate, owner *loaded, dirs []string, how How, name string) []candidate {
	for _, d := range dirs {
		exp := Expand(d, origin(owner.path))
		if !path.IsAbs(exp) {
			continue
		}
		cs = append(cs, candidate{path: strings.TrimSuffix(exp, "/") + "/" + name, how: how, dir: d, owner: owner, place: exp})
	}
	return cs
}

// origin is what $ORIGIN stands for in the object at p: its directory, as
// ld.so takes it, without cleaning the path.
func origin(p string) string {
	i := strings.LastIndex(p, "/")
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
