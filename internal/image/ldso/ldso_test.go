package ldso_test

import (
	"bytes"
	"debug/elf"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/image/ldso"
	"github.com/moatcloud/moat/internal/image/ldso/ldsotest"
)

func TestRead(t *testing.T) {
	tests := []struct {
		name string
		elf  ldsotest.ELF
		want ldso.Object
	}{{
		name: "static",
		elf:  ldsotest.ELF{Type: elf.ET_EXEC},
		want: ldso.Object{Class: elf.ELFCLASS64, Machine: elf.EM_X86_64, Type: elf.ET_EXEC},
	}, {
		name: "program",
		elf:  ldsotest.ELF{Interp: "/lib64/ld-linux-x86-64.so.2", Needed: []string{"libgreet.so", "libc.so.6"}, RunPath: "$ORIGIN/../lib:/opt/lib"},
		want: ldso.Object{
			Class: elf.ELFCLASS64, Machine: elf.EM_X86_64, Type: elf.ET_DYN, Interp: "/lib64/ld-linux-x86-64.so.2",
			Needed: []string{"libgreet.so", "libc.so.6"}, RunPath: []string{"$ORIGIN/../lib", "/opt/lib"},
		},
	}, {
		name: "library with DT_RPATH",
		elf:  ldsotest.ELF{Machine: elf.EM_AARCH64, Soname: "libx.so.1", Needed: []string{"libc.so.6"}, RPath: "/opt/x"},
		want: ldso.Object{Class: elf.ELFCLASS64, Machine: elf.EM_AARCH64, Type: elf.ET_DYN, Soname: "libx.so.1", Needed: []string{"libc.so.6"}, RPath: []string{"/opt/x"}},
	}, {
		name: "DT_RUNPATH hides DT_RPATH, as ld.so ignores it",
		elf:  ldsotest.ELF{RPath: "/old", RunPath: "/new"},
		want: ldso.Object{Class: elf.ELFCLASS64, Machine: elf.EM_X86_64, Type: elf.ET_DYN, RunPath: []string{"/new"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ldso.Read(bytes.NewReader(tt.elf.Bytes()))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	full := ldsotest.ELF{Interp: "/lib/ld.so", Needed: []string{"libc.so.6"}}.Bytes()
	tests := []struct {
		name   string
		data   []byte
		notELF bool
	}{
		{"empty", nil, true},
		{"script", []byte("#!/bin/sh\necho hi\n"), true},
		{"only the magic", []byte("\x7fELF"), false},
		{"truncated", full[:len(full)-100], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ldso.Read(bytes.NewReader(tt.data))
			if err == nil {
				t.Fatal("Read succeeded")
			}
			if errors.Is(err, ldso.ErrNotELF) != tt.notELF {
				t.Errorf("Read: %v; is ErrNotELF: %v, want %v", err, !tt.notELF, tt.notELF)
			}
		})
	}
}
