package ldso_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/image/ldso"
	"github.com/moatcloud/moat/internal/image/ldso/ldsotest"
)

var cacheEntries = []ldsotest.CacheEntry{
	{Name: "libc.so.6", Path: "/lib/x86_64-linux-gnu/libc.so.6"},
	{Name: "libc.so.6", Path: "/lib/i386-linux-gnu/libc.so.6", Flags: 0x0003},
	{Name: "libz.so.1", Path: "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libz.so.1", HWCap: 1<<62 | 2},
	{Name: "libz.so.1", Path: "/usr/lib/x86_64-linux-gnu/libz.so.1"},
}

func TestParseCache(t *testing.T) {
	want := ldso.Cache{
		{Name: "libc.so.6", Path: "/lib/x86_64-linux-gnu/libc.so.6", Flags: 0x0303},
		{Name: "libc.so.6", Path: "/lib/i386-linux-gnu/libc.so.6", Flags: 0x0003},
		{Name: "libz.so.1", Path: "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libz.so.1", Flags: 0x0303, HWCap: 1<<62 | 2},
		{Name: "libz.so.1", Path: "/usr/lib/x86_64-linux-gnu/libz.so.1", Flags: 0x0303},
	}
	for name, data := range map[string][]byte{
		"new":    ldsotest.Cache(cacheEntries...),
		"compat": ldsotest.CompatCache(cacheEntries...),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ldso.ParseCache(data)
			if err != nil {
				t.Fatalf("ParseCache: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseCache (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"/usr/lib/x86_64-linux-gnu/libz.so.1"}, got.Lookup("libz.so.1")); diff != "" {
				t.Errorf("Lookup(libz.so.1) (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseCacheOld: the old format alone, without the new cache after
// it, which glibc's ld.so still reads.
func TestParseCacheOld(t *testing.T) {
	old := []byte("ld.so-1.7.0\x00")
	for _, v := range []uint32{1, 0x0303, 0, uint32(len("libc.so.6\x00"))} { // nlibs, then flags, key, value
		old = binary.LittleEndian.AppendUint32(old, v)
	}
	old = append(old, "libc.so.6\x00/lib/x86_64-linux-gnu/libc.so.6\x00"...)
	got, err := ldso.ParseCache(old)
	if err != nil {
		t.Fatalf("ParseCache: %v", err)
	}
	want := ldso.Cache{{Name: "libc.so.6", Path: "/lib/x86_64-linux-gnu/libc.so.6", Flags: 0x0303}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseCache (-want +got):\n%s", diff)
	}
}

func TestParseCacheErrors(t *testing.T) {
	good := ldsotest.Cache(cacheEntries[0])
	patch := func(at int, v uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[at:], v)
		return b
	}
	tests := map[string][]byte{
		"empty":                  nil,
		"unknown magic":          []byte("glibc-ld.so.cache1.0 and more bytes than a header holds, really"),
		"truncated header":       good[:40],
		"too many entries":       patch(20, 1<<30),
		"name past the end":      patch(48+4, uint32(len(good))),
		"path not terminated":    good[:len(good)-1],
		"other byte order":       append(append(bytes.Clone(good[:28]), 1), good[29:]...),
		"truncated compat":       []byte("ld.so-1.7.0\x00\x01"),
		"compat entries too big": append([]byte("ld.so-1.7.0\x00"), 0xff, 0xff, 0xff, 0x0f),
	}
	for name, data := range tests {
		if c, err := ldso.ParseCache(data); err == nil {
			t.Errorf("%s: ParseCache = %v, want an error", name, c)
		}
	}
}

// TestParseCacheHost reads the cache of the machine the tests run on.
func TestParseCacheHost(t *testing.T) {
	data, err := os.ReadFile(ldso.CachePath)
	if err != nil {
		t.Skipf("no host cache: %v", err)
	}
	c, err := ldso.ParseCache(data)
	if err != nil {
		t.Fatalf("ParseCache(%s): %v", ldso.CachePath, err)
	}
	if len(c.Lookup("libc.so.6")) == 0 {
		t.Errorf("%s lists no libc.so.6 among its %d entries", ldso.CachePath, len(c))
	}
}

// FuzzParseCache: a cache from an image never makes the parser panic or
// return strings that are not in the file.
func FuzzParseCache(f *testing.F) {
	f.Add(ldsotest.Cache(cacheEntries...))
	f.Add(ldsotest.CompatCache(cacheEntries...))
	f.Add(ldsotest.Cache())
	f.Add([]byte("ld.so-1.7.0\x00\x00\x00\x00\x00"))
	if host, err := os.ReadFile(ldso.CachePath); err == nil {
		f.Add(host)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ldso.ParseCache(data)
		if err != nil {
			return
		}
		if len(c)*12 > len(data) {
			t.Fatalf("%d entries from %d bytes", len(c), len(data))
		}
		for _, e := range c {
			if !bytes.Contains(data, []byte(e.Name+"\x00")) || !bytes.Contains(data, []byte(e.Path+"\x00")) {
				t.Fatalf("entry %+v is not in the file", e)
			}
		}
	})
}
