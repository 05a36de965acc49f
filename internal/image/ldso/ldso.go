// Package ldso finds what Linux's dynamic loader (ld.so) maps to run an ELF
// program: its interpreter (PT_INTERP) and the shared libraries it needs
// (DT_NEEDED), transitively, searched the way glibc's ld.so searches them.
//
// The search runs against an FS, so the same rules answer two questions:
// which files of the build machine an image needs for a program (Host), and
// whether an image holds everything its programs need (a view of the
// image's merged layers). Resolve is pure over the FS; ParseCache reads
// ld.so.cache files, which may come from untrusted images.
package ldso

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrNotELF is wrapped by errors about files that are not ELF objects.
var ErrNotELF = errors.New("not an ELF file")

// Object is what the loader reads of an ELF file.
type Object struct {
	Class   elf.Class
	Machine elf.Machine
	Type    elf.Type
	Interp  string   // PT_INTERP; "" for static programs and most libraries
	Needed  []string // DT_NEEDED, in the order the loader maps them
	RunPath []string // DT_RUNPATH split on ':'; nil when the object has none
	RPath   []string // DT_RPATH split on ':'; nil when absent or when RunPath is set, as ld.so then ignores it
	Soname  string   // DT_SONAME
}

// maxInterp bounds PT_INTERP as the kernel does (PATH_MAX), so a hostile
// file cannot make Read allocate its whole segment.
const maxInterp = 4096

// Read parses the ELF file r. A file without the ELF magic gives an error
// wrapping ErrNotELF.
func Read(r io.ReaderAt) (*Object, error) {
	var magic [len(elf.ELFMAG)]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil || string(magic[:]) != elf.ELFMAG {
		return nil, ErrNotELF
	}
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("parse ELF: %w", err)
	}
	o := &Object{Class: f.Class, Machine: f.Machine, Type: f.Type}
	dynamic := false
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			b, err := io.ReadAll(io.LimitReader(p.Open(), maxInterp))
			if err != nil {
				return nil, fmt.Errorf("read PT_INTERP: %w", err)
			}
			o.Interp, _, _ = strings.Cut(string(b), "\x00")
		case elf.PT_DYNAMIC:
			dynamic = true
		}
	}
	if dynamic && f.SectionByType(elf.SHT_DYNAMIC) == nil {
		// debug/elf reads the dynamic section through the section headers,
		// which strip tools can remove while the loader still runs the file.
		return nil, errors.New("parse ELF: no section headers for its dynamic segment, cannot list the libraries it needs")
	}
	if err := readDynamic(f, o); err != nil {
		return nil, fmt.Errorf("parse ELF dynamic section: %w", err)
	}
	return o, nil
}

func readDynamic(f *elf.File, o *Object) error {
	var err error
	if o.Needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return err
	}
	runpath, err := f.DynString(elf.DT_RUNPATH)
	if err != nil {
		return err
	}
	rpath, err := f.DynString(elf.DT_RPATH)
	if err != nil {
		return err
	}
	if runpath != nil {
		o.RunPath = strings.Split(strings.Join(runpath, ":"), ":")
	} else if rpath != nil {
		o.RPath = strings.Split(strings.Join(rpath, ":"), ":")
	}
	soname, err := f.DynString(elf.DT_SONAME)
	if err != nil {
		return err
	}
	if len(soname) > 0 {
		o.Soname = soname[0]
	}
	return nil
}

// FS is the file system the loader searches.
type FS interface {
	// Object reads the ELF object at the absolute path name, following
	// symlinks as open(2) does. A missing file gives an error wrapping
	// fs.ErrNotExist; a file that is not ELF, one wrapping ErrNotELF.
	Object(name string) (*Object, error)
}

// Host is the file system of the machine moat runs on.
type Host struct{}

// Object implements FS.
func (Host) Object(name string) (*Object, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	o, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return o, nil
}

// HostCache reads the machine's /etc/ld.so.cache; without one it returns
// an empty cache, as ld.so then searches the default directories only.
func HostCache() (Cache, error) {
	b, err := os.ReadFile(CachePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := ParseCache(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (ldconfig rebuilds it)", CachePath, err)
	}
	return c, nil
}
