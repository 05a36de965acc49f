package ldsotest

import (
	"bytes"
	"encoding/binary"
)

// CacheEntry is one library an ld.so.cache lists.
type CacheEntry struct {
	Name, Path string
	Flags      int32  // default 0x0303: FLAG_ELF_LIBC6 | FLAG_X8664_LIB64
	HWCap      uint64 // non-zero for a hwcap-specific copy
}

const defaultFlags = 0x0303

// Cache returns an ld.so.cache in the format glibc 2.32 and later write.
func Cache(entries ...CacheEntry) []byte {
	return newCache(entries, 0, 0)
}

// CompatCache returns an ld.so.cache in the format earlier glibc releases
// write: old entries, then the new cache, string offsets of both counting
// from the end of the old entries.
func CompatCache(entries ...CacheEntry) []byte {
	var b bytes.Buffer
	b.WriteString("ld.so-1.7.0\x00")
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(entries))))
	base := b.Len() + 12*len(entries)
	newStart := (base + 7) &^ 7
	strs := strOffsets(entries, newStart+48+24*len(entries)-base)
	for i, e := range entries {
		b.Write(u32(uint32(flags(e)), strs[2*i], strs[2*i+1]))
	}
	b.Write(make([]byte, newStart-base))
	b.Write(newCache(entries, newStart, base)[newStart:])
	return b.Bytes()
}

// newCache writes the new format as if it started at start in a file
// whose string offsets count from base; the bytes before start are zero.
func newCache(entries []CacheEntry, start, base int) []byte {
	b := bytes.NewBuffer(make([]byte, start))
	b.WriteString("glibc-ld.so.cache1.1")
	b.Write(u32(uint32(len(entries)), 0))
	b.Write([]byte{2, 0, 0, 0}) // little endian
	b.Write(u32(0, 0, 0, 0))    // extension offset, unused
	strs := strOffsets(entries, start+48+24*len(entries)-base)
	for i, e := range entries {
		b.Write(u32(uint32(flags(e)), strs[2*i], strs[2*i+1], 0))
		b.Write(binary.LittleEndian.AppendUint64(nil, e.HWCap))
	}
	for _, e := range entries {
		b.WriteString(e.Name + "\x00" + e.Path + "\x00")
	}
	return b.Bytes()
}

// strOffsets returns the offsets of each entry's name and path when the
// strings are written in order from first.
func strOffsets(entries []CacheEntry, first int) []uint32 {
	var offs []uint32
	at := first
	for _, e := range entries {
		offs = append(offs, uint32(at), uint32(at+len(e.Name)+1))
		at += len(e.Name) + 1 + len(e.Path) + 1
	}
	return offs
}

func flags(e CacheEntry) int32 {
	if e.Flags == 0 {
		return defaultFlags
	}
	return e.Flags
}

func u32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}
