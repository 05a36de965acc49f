package build

import (
	"debug/elf"
	"errors"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image/ldso"
)

func TestParseAddBinary(t *testing.T) {
	good := []struct {
		in   string
		want File
	}{
		{"/usr/bin/caddy", File{Src: "/usr/bin/caddy", Dst: "/usr/bin/caddy"}},
		{"/usr//bin/caddy", File{Src: "/usr//bin/caddy", Dst: "/usr/bin/caddy"}},
		{"/usr/bin/caddy:/caddy", File{Src: "/usr/bin/caddy", Dst: "/caddy"}},
		{"./out/greet:/app/bin/greet", File{Src: "./out/greet", Dst: "/app/bin/greet"}},
	}
	for _, tt := range good {
		got, err := ParseAddBinary(tt.in)
		if err != nil {
			t.Errorf("ParseAddBinary(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseAddBinary(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	bad := []struct{ in, want string }{
		{"", "want PATH[:DST]"},
		{":/app", "want PATH[:DST]"},
		{"/usr/bin/caddy:", "want PATH[:DST]"},
		{"/usr/bin/caddy:/caddy:0755", "want PATH[:DST]"},
		{"out/greet", "give where it goes in the image, e.g. out/greet:/greet"},
		{"greet:bin/greet", "want an absolute path"},
		{"greet:/usr/../greet", `".." is not allowed`},
	}
	for _, tt := range bad {
		_, err := ParseAddBinary(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("ParseAddBinary(%q) = %v, want an invalid-input error containing %q", tt.in, err, tt.want)
		}
	}
}

// objects is a file system of ELF objects by path, without symlinks.
type objects map[string]*ldso.Object

func (o objects) Object(name string) (*ldso.Object, error) {
	if obj, ok := o[path.Clean(name)]; ok {
		return obj, nil
	}
	if name == "/srv/notes.txt" {
		return nil, ldso.ErrNotELF
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func x8664(o ldso.Object) *ldso.Object {
	o.Class, o.Machine, o.Type = elf.ELFCLASS64, elf.EM_X86_64, elf.ET_DYN
	return &o
}

// TestProgramFiles: each library goes where the image's loader will open
// it, whatever the program's path on the build machine.
func TestProgramFiles(t *testing.T) {
	const interp = "/lib64/ld-linux-x86-64.so.2"
	host := objects{
		interp:                                x8664(ldso.Object{Soname: "ld-linux-x86-64.so.2"}),
		"/lib/x86_64-linux-gnu/libc.so.6":     x8664(ldso.Object{Soname: "libc.so.6", Needed: []string{"ld-linux-x86-64.so.2"}}),
		"/home/u/greet/bin/greet":             x8664(ldso.Object{Interp: interp, Needed: []string{"libgreet.so", "libc.so.6"}, RunPath: []string{"$ORIGIN/../lib"}}),
		"/home/u/greet/lib/libgreet.so":       x8664(ldso.Object{Needed: []string{"libfmt.so.9", "libc.so.6", "$ORIGIN/plugins/p.so"}}),
		"/home/u/greet/lib/plugins/p.so":      x8664(ldso.Object{}),
		"/usr/local/lib/libfmt.so.9":          x8664(ldso.Object{Needed: []string{"libm.so.6"}}),
		"/usr/lib/x86_64-linux-gnu/libm.so.6": x8664(ldso.Object{}),
		"/opt/app/app":                        x8664(ldso.Object{Interp: interp, Needed: []string{"liba.so"}, RPath: []string{"$ORIGIN/lib"}}),
		"/opt/app/lib/liba.so":                x8664(ldso.Object{Needed: []string{"libb.so"}}),
		"/opt/app/lib/libb.so":                x8664(ldso.Object{}),
		"/usr/bin/broken":                     x8664(ldso.Object{Interp: interp, Needed: []string{"libgone.so.1"}}),
		"/usr/bin/static":                     {Class: elf.ELFCLASS64, Machine: elf.EM_X86_64, Type: elf.ET_EXEC},
	}
	cache := ldso.Cache{
		{Name: "libfmt.so.9", Path: "/usr/local/lib/libfmt.so.9"},
		{Name: "libm.so.6", Path: "/usr/lib/x86_64-linux-gnu/libm.so.6"},
	}
	tests := []struct {
		name    string
		bin     File
		real    string
		want    []File
		wantErr string
	}{{
		name: "$ORIGIN follows the program into the image; the cache's odd directories do not",
		bin:  File{Src: "./greet", Dst: "/app/bin/greet", Mode: 0o755},
		real: "/home/u/greet/bin/greet",
		want: []File{
			{Src: "./greet", Dst: "/app/bin/greet", Mode: 0o755},
			{Src: interp, Dst: interp},
			{Src: "/home/u/greet/bin/../lib/libgreet.so", Dst: "/app/lib/libgreet.so"},
			{Src: "/lib/x86_64-linux-gnu/libc.so.6", Dst: "/lib/x86_64-linux-gnu/libc.so.6"},
			{Src: "/usr/local/lib/libfmt.so.9", Dst: "/lib/x86_64-linux-gnu/libfmt.so.9"},
			{Src: "/home/u/greet/bin/../lib/plugins/p.so", Dst: "/app/lib/plugins/p.so"},
			{Src: "/usr/lib/x86_64-linux-gnu/libm.so.6", Dst: "/usr/lib/x86_64-linux-gnu/libm.so.6"},
		},
	}, {
		name: "an inherited DT_RPATH expands $ORIGIN of the program that holds it",
		bin:  File{Src: "/opt/app/app", Dst: "/srv/app"},
		real: "/opt/app/app",
		want: []File{
			{Src: "/opt/app/app", Dst: "/srv/app"},
			{Src: interp, Dst: interp},
			{Src: "/opt/app/lib/liba.so", Dst: "/srv/lib/liba.so"},
			{Src: "/opt/app/lib/libb.so", Dst: "/srv/lib/libb.so"},
		},
	}, {
		name: "a static program is added alone",
		bin:  File{Src: "/usr/bin/static", Dst: "/static"},
		real: "/usr/bin/static",
		want: []File{{Src: "/usr/bin/static", Dst: "/static"}},
	}, {
		name:    "a missing library names the binary, the library and where the loader looked",
		bin:     File{Src: "/usr/bin/broken", Dst: "/broken"},
		real:    "/usr/bin/broken",
		wantErr: "--add-binary /usr/bin/broken: the loader would not find what it needs: /usr/bin/broken needs libgone.so.1: not found in /etc/ld.so.cache, /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib",
	}, {
		name:    "not a program",
		bin:     File{Src: "notes.txt", Dst: "/notes.txt"},
		real:    "/srv/notes.txt",
		wantErr: "--add-binary notes.txt: not an ELF program; add other files with --add",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := programFiles(host, cache, tt.bin, tt.real)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errs.ErrInvalid) {
					t.Fatalf("programFiles = %v, %v; want the invalid-input error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("programFiles: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("programFiles (-want +got):\n%s", diff)
			}
		})
	}
}
