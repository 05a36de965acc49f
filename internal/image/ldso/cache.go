package ldso

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// CachePath is where ld.so looks for its cache, on the host and in images.
const CachePath = "/etc/ld.so.cache"

// The two formats ldconfig writes (glibc's sysdeps/generic/dl-cache.h).
// Since glibc 2.32 it writes only the new one; before, the new one followed
// the old one ("compat"), and string offsets of both counted from the end
// of the old entries.
const (
	magicOld    = "ld.so-1.7.0"
	magicNew    = "glibc-ld.so.cache1.1"
	headerOld   = 16 // magic, padding, nlibs
	entryOld    = 12 // flags, key, value
	headerNew   = 48 // magic+version, nlibs, len_strings, flags, padding, extension_offset, unused[3]
	entryNew    = 24 // flags, key, value, osversion, hwcap
	alignNew    = 8  // the new header follows the old entries at this alignment
	endianMask  = 3  // the new header's flags byte: 0 unset, 1 invalid, 2 little, 3 big
	endianBig   = 3
	endianWrong = 1
)

// CacheEntry is one library the cache lists.
type CacheEntry struct {
	Name  string // the soname asked for, e.g. libc.so.6
	Path  string // where it is, e.g. /lib/x86_64-linux-gnu/libc.so.6
	Flags int32  // library type and ABI (FLAG_ELF_LIBC6 | FLAG_X8664_LIB64, ...)
	HWCap uint64 // non-zero for a copy built for particular CPU features
}

// Cache is a parsed ld.so.cache, entries in file order.
type Cache []CacheEntry

// Lookup returns where the cache says name is, in cache order, leaving out
// copies built for particular CPU features (glibc-hwcaps, legacy hwcap
// subdirectories): an image runs on whatever CPU its node has, so it gets
// the baseline library. The ABI flags are not checked here; Resolve opens
// each candidate and checks its class and machine, as ld.so does.
func (c Cache) Lookup(name string) []string {
	var paths []string
	for _, e := range c {
		if e.Name == name && e.HWCap == 0 {
			paths = append(paths, e.Path)
		}
	}
	return paths
}

// ParseCache parses an ld.so.cache file in the new format, the compat format
// (old entries, then the new cache) or the old one alone. It checks every
// count and offset against the file's size: caches come from images too.
func ParseCache(b []byte) (Cache, error) {
	switch {
	case bytes.HasPrefix(b, []byte(magicNew)):
		return parseNew(b, 0, 0)
	case bytes.HasPrefix(b, []byte(magicOld)):
		return parseCompat(b)
	}
	return nil, errors.New("not an ld.so.cache: unknown magic")
}

// parseCompat reads the old format and, when a new cache follows it, that
// instead: only the new entries carry hwcap and 64-bit flags.
func parseCompat(b []byte) (Cache, error) {
	if len(b) < headerOld {
		return nil, errors.New("ld.so.cache: truncated header")
	}
	n := uint64(binary.LittleEndian.Uint32(b[12:]))
	strs := headerOld + n*entryOld
	if strs > uint64(len(b)) {
		return nil, fmt.Errorf("ld.so.cache: %d entries do not fit in %d bytes", n, len(b))
	}
	next := (strs + alignNew - 1) &^ (alignNew - 1)
	if next <= uint64(len(b)) && bytes.HasPrefix(b[next:], []byte(magicNew)) {
		return parseNew(b, int(next), int(strs))
	}
	c := make(Cache, 0, n)
	for i := range n {
		e := b[headerOld+i*entryOld:]
		entry, err := cacheEntry(b, int(strs), int32(binary.LittleEndian.Uint32(e)),
			binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint32(e[8:]))
		if err != nil {
			return nil, fmt.Errorf("ld.so.cache entry %d: %w", i, err)
		}
		c = append(c, entry)
	}
	return c, nil
}

// parseNew reads the new format whose header is at start; string offsets
// count from base.
func parseNew(b []byte, start, base int) (Cache, error) {
	h := b[start:]
	if len(h) < headerNew {
		return nil, errors.New("ld.so.cache: truncated header")
	}
	var order binary.ByteOrder = binary.LittleEndian
	switch h[28] & endianMask {
	case endianBig:
		order = binary.BigEndian
	case endianWrong:
		return nil, errors.New("ld.so.cache: written for a machine of the other byte order")
	}
	n := uint64(order.Uint32(h[20:]))
	if uint64(headerNew)+n*entryNew > uint64(len(h)) {
		return nil, fmt.Errorf("ld.so.cache: %d entries do not fit in %d bytes", n, len(h))
	}
	c := make(Cache, 0, n)
	for i := range n {
		e := h[headerNew+i*entryNew:]
		entry, err := cacheEntry(b, base, int32(order.Uint32(e)), order.Uint32(e[4:]), order.Uint32(e[8:]))
		if err != nil {
			return nil, fmt.Errorf("ld.so.cache entry %d: %w", i, err)
		}
		entry.HWCap = order.Uint64(e[16:])
		c = append(c, entry)
	}
	return c, nil
}

func cacheEntry(b []byte, base int, flags int32, key, value uint32) (CacheEntry, error) {
	name, err := cString(b, base, key)
	if err != nil {
		return CacheEntry{}, fmt.Errorf("name: %w", err)
	}
	p, err := cString(b, base, value)
	if err != nil {
		return CacheEntry{}, fmt.Errorf("path: %w", err)
	}
	return CacheEntry{Name: name, Path: p, Flags: flags}, nil
}

// cString returns the NUL-terminated string at base+off in b.
func cString(b []byte, base int, off uint32) (string, error) {
	at := uint64(base) + uint64(off)
	if at >= uint64(len(b)) {
		return "", fmt.Errorf("offset %d is past the end of the file", off)
	}
	s, _, ok := bytes.Cut(b[at:], []byte{0})
	if !ok {
		return "", fmt.Errorf("string at offset %d is not terminated", off)
	}
	return string(s), nil
}
