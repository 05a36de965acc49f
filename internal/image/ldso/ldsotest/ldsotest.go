// Package ldsotest writes small synthetic ELF objects and ld.so.cache files
// for tests of code that reads them, so that those tests need no compiler
// and can describe exactly the case they check.
package ldsotest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
)

// ELF describes a 64-bit little-endian ELF object. The zero value is a
// static shared object for x86-64 that needs nothing.
type ELF struct {
	Machine elf.Machine // default EM_X86_64
	Type    elf.Type    // default ET_DYN
	Interp  string      // PT_INTERP
	Needed  []string    // DT_NEEDED
	RunPath string      // DT_RUNPATH, "" for none
	RPath   string      // DT_RPATH, "" for none
	Soname  string      // DT_SONAME
}

// Sizes of the ELF64 structures written.
const (
	headerSize  = 64
	progSize    = 56
	sectionSize = 64
	dynSize     = 16
)

// Bytes returns the object: a header, PT_INTERP and PT_DYNAMIC program
// headers as needed, and section headers for .interp, .dynstr, .dynamic
// and .shstrtab, which is what debug/elf and ld.so read. It has no code.
func (e ELF) Bytes() []byte {
	if e.Machine == 0 {
		e.Machine = elf.EM_X86_64
	}
	if e.Type == 0 {
		e.Type = elf.ET_DYN
	}
	w := &writer{shstr: []byte{0}}
	w.sections = append(w.sections, elf.Section64{}) // the null section
	var progs []elf.Prog64
	if e.Interp != "" {
		off, size := w.data(append([]byte(e.Interp), 0))
		w.section(".interp", elf.SHT_PROGBITS, off, size, 0, 0)
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: off, Filesz: size, Memsz: size, Align: 1})
	}
	if dyn := e.dynamic(); dyn != nil {
		off, size := w.data(dyn.str)
		strtab := w.section(".dynstr", elf.SHT_STRTAB, off, size, 0, 0)
		off, size = w.data(dyn.entries)
		w.section(".dynamic", elf.SHT_DYNAMIC, off, size, strtab, dynSize)
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_DYNAMIC), Flags: uint32(elf.PF_R | elf.PF_W), Off: off, Filesz: size, Memsz: size, Align: 8})
	}
	return w.finish(e, progs)
}

// dyn is a dynamic section and its string table.
type dyn struct{ str, entries []byte }

func (e ELF) dynamic() *dyn {
	if len(e.Needed) == 0 && e.RunPath == "" && e.RPath == "" && e.Soname == "" {
		return nil
	}
	d := &dyn{str: []byte{0}}
	add := func(tag elf.DynTag, s string) {
		d.entries = binary.LittleEndian.AppendUint64(d.entries, uint64(tag))
		d.entries = binary.LittleEndian.AppendUint64(d.entries, uint64(len(d.str)))
		d.str = append(append(d.str, s...), 0)
	}
	for _, n := range e.Needed {
		add(elf.DT_NEEDED, n)
	}
	if e.Soname != "" {
		add(elf.DT_SONAME, e.Soname)
	}
	if e.RPath != "" {
		add(elf.DT_RPATH, e.RPath)
	}
	if e.RunPath != "" {
		add(elf.DT_RUNPATH, e.RunPath)
	}
	d.entries = append(d.entries, make([]byte, dynSize)...) // DT_NULL
	return d
}

// writer lays out the data of the sections after the header and the
// program headers, which are written last, once their number is known.
type writer struct {
	body     bytes.Buffer // everything after the program headers
	sections []elf.Section64
	shstr    []byte
}

// maxProgs is how many program headers Bytes may write; the body starts
// after room for them.
const maxProgs = 2

func (w *writer) data(b []byte) (off, size uint64) {
	for w.body.Len()%8 != 0 {
		w.body.WriteByte(0)
	}
	off = uint64(headerSize + maxProgs*progSize + w.body.Len())
	w.body.Write(b)
	return off, uint64(len(b))
}

func (w *writer) section(name string, typ elf.SectionType, off, size uint64, link uint32, entsize uint64) uint32 {
	w.sections = append(w.sections, elf.Section64{
		Name: uint32(len(w.shstr)), Type: uint32(typ), Flags: uint64(elf.SHF_ALLOC),
		Off: off, Size: size, Link: link, Addralign: 1, Entsize: entsize,
	})
	w.shstr = append(append(w.shstr, name...), 0)
	return uint32(len(w.sections) - 1)
}

func (w *writer) finish(e ELF, progs []elf.Prog64) []byte {
	shstrndx := uint16(len(w.sections))
	w.shstr = append(w.shstr, ".shstrtab\x00"...)
	off, size := w.data(w.shstr)
	w.sections = append(w.sections, elf.Section64{Name: uint32(len(w.shstr) - len(".shstrtab\x00")), Type: uint32(elf.SHT_STRTAB), Off: off, Size: size, Addralign: 1})
	for w.body.Len()%8 != 0 {
		w.body.WriteByte(0)
	}
	shoff := uint64(headerSize + maxProgs*progSize + w.body.Len())
	h := elf.Header64{
		Type: uint16(e.Type), Machine: uint16(e.Machine), Version: uint32(elf.EV_CURRENT),
		Phoff: headerSize, Shoff: shoff, Ehsize: headerSize, Phentsize: progSize, Phnum: uint16(len(progs)),
		Shentsize: sectionSize, Shnum: uint16(len(w.sections)), Shstrndx: shstrndx,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var out bytes.Buffer
	write(&out, h)
	for _, p := range progs {
		write(&out, p)
	}
	out.Write(make([]byte, (maxProgs-len(progs))*progSize))
	out.Write(w.body.Bytes())
	for _, s := range w.sections {
		write(&out, s)
	}
	return out.Bytes()
}

func write(b *bytes.Buffer, v any) {
	if err := binary.Write(b, binary.LittleEndian, v); err != nil {
		panic(err) // fixed-size structs into a buffer cannot fail
	}
}
