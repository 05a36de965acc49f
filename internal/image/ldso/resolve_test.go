package ldso_test

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/image/ldso"
)

// fakeFS is a file system of ELF objects by path, without symlinks.
type fakeFS map[string]*ldso.Object

func (f fakeFS) Object(name string) (*ldso.Object, error) {
	if o, ok := f[path.Clean(name)]; ok {
		return o, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

const interp = "/lib64/ld-linux-x86-64.so.2"

// Objects of an x86-64 Debian system, and a few others.
func prog(needed ...string) *ldso.Object {
	return &ldso.Object{Class: elf.ELFCLASS64, Machine: elf.EM_X86_64, Type: elf.ET_DYN, Interp: interp, Needed: needed}
}

func lib(soname string, needed ...string) *ldso.Object {
	return &ldso.Object{Class: elf.ELFCLASS64, Machine: elf.EM_X86_64, Type: elf.ET_DYN, Soname: soname, Needed: needed}
}

var (
	ldLinux = lib("ld-linux-x86-64.so.2")
	libc    = lib("libc.so.6", "ld-linux-x86-64.so.2")
)

// system is what every case's file system holds besides its own files.
func system(more fakeFS) fakeFS {
	f := fakeFS{interp: ldLinux, "/lib/x86_64-linux-gnu/libc.so.6": libc}
	for p, o := range more {
		f[p] = o
	}
	return f
}

func withRunPath(o *ldso.Object, dirs ...string) *ldso.Object { o.RunPath = dirs; return o }
func withRPath(o *ldso.Object, dirs ...string) *ldso.Object   { o.RPath = dirs; return o }

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		fs      fakeFS
		cache   ldso.Cache
		prog    string
		libs    []string // "how path" in load order
		missing []string
	}{{
		name: "static program",
		fs:   fakeFS{"/app": {Class: elf.ELFCLASS64, Machine: elf.EM_X86_64, Type: elf.ET_EXEC}},
		prog: "/app",
	}, {
		name: "libc's need of ld.so is met by the interpreter, through its soname",
		fs:   system(fakeFS{"/usr/bin/app": prog("libc.so.6")}),
		prog: "/usr/bin/app",
		libs: []string{"PT_INTERP " + interp, "default directory /lib/x86_64-linux-gnu/libc.so.6"},
	}, {
		name: "DT_RUNPATH with $ORIGIN",
		fs: system(fakeFS{
			"/opt/greet/bin/greet":       withRunPath(prog("libgreet.so", "libc.so.6"), "$ORIGIN/../lib"),
			"/opt/greet/lib/libgreet.so": lib("libgreet.so", "libc.so.6"),
		}),
		prog: "/opt/greet/bin/greet",
		libs: []string{
			"PT_INTERP " + interp,
			"DT_RUNPATH /opt/greet/bin/../lib/libgreet.so",
			"default directory /lib/x86_64-linux-gnu/libc.so.6",
		},
	}, {
		name: "DT_RPATH is inherited by the libraries the program loads",
		fs: system(fakeFS{
			"/opt/a/bin/app":      withRPath(prog("libx.so"), "${ORIGIN}/../lib"),
			"/opt/a/lib/libx.so":  lib("libx.so", "liby.so"),
			"/opt/a/lib/liby.so":  lib("liby.so"),
			"/usr/lib/libx.so":    lib("libx.so"),
			"/usr/lib/liby.so.99": lib("liby.so.99"),
		}),
		prog: "/opt/a/bin/app",
		libs: []string{"PT_INTERP " + interp, "DT_RPATH /opt/a/bin/../lib/libx.so", "DT_RPATH /opt/a/bin/../lib/liby.so"},
	}, {
		name: "DT_RUNPATH is not inherited",
		fs: system(fakeFS{
			"/opt/a/bin/app":     withRunPath(prog("libx.so"), "/opt/a/lib"),
			"/opt/a/lib/libx.so": lib("libx.so", "liby.so"),
			"/opt/a/lib/liby.so": lib("liby.so"),
		}),
		prog:    "/opt/a/bin/app",
		libs:    []string{"PT_INTERP " + interp, "DT_RUNPATH /opt/a/lib/libx.so"},
		missing: []string{"/opt/a/lib/libx.so needs liby.so: not found in /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib"},
	}, {
		name: "a library with DT_RUNPATH does not search the DT_RPATH of its loaders",
		fs: system(fakeFS{
			"/opt/a/bin/app":     withRPath(prog("libx.so"), "/opt/a/lib"),
			"/opt/a/lib/libx.so": withRunPath(lib("libx.so", "liby.so"), "/opt/x"),
			"/opt/a/lib/liby.so": lib("liby.so"),
		}),
		prog:    "/opt/a/bin/app",
		libs:    []string{"PT_INTERP " + interp, "DT_RPATH /opt/a/lib/libx.so"},
		missing: []string{"/opt/a/lib/libx.so needs liby.so: not found in /opt/x, /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib"},
	}, {
		name: "the cache comes before the default directories, leaving out hwcap copies",
		fs: system(fakeFS{
			"/usr/bin/app":                          prog("libfoo.so.1"),
			"/usr/local/lib/libfoo.so.1":            lib("libfoo.so.1"),
			"/usr/lib/x86_64-linux-gnu/libfoo.so.1": lib("libfoo.so.1"),
			"/opt/v3/libfoo.so.1":                   lib("libfoo.so.1"),
		}),
		cache: ldso.Cache{
			{Name: "libfoo.so.1", Path: "/opt/v3/libfoo.so.1", HWCap: 1 << 62},
			{Name: "libfoo.so.1", Path: "/usr/local/lib/libfoo.so.1"},
		},
		prog: "/usr/bin/app",
		libs: []string{"PT_INTERP " + interp, "ld.so.cache /usr/local/lib/libfoo.so.1"},
	}, {
		name: "candidates of another machine, class or type are skipped",
		fs: system(fakeFS{
			"/usr/bin/app":                        prog("libz.so.1"),
			"/lib/x86_64-linux-gnu/libz.so.1":     {Class: elf.ELFCLASS64, Machine: elf.EM_AARCH64, Type: elf.ET_DYN},
			"/usr/lib/x86_64-linux-gnu/libz.so.1": {Class: elf.ELFCLASS32, Machine: elf.EM_X86_64, Type: elf.ET_DYN},
			"/lib64/libz.so.1":                    {Class: elf.ELFCLASS64, Machine: elf.EM_X86_64, Type: elf.ET_REL},
			"/usr/lib/libz.so.1":                  lib("libz.so.1"),
		}),
		prog: "/usr/bin/app",
		libs: []string{"PT_INTERP " + interp, "default directory /usr/lib/libz.so.1"},
	}, {
		name: "a missing library names the places searched and why candidates did not do",
		fs: system(fakeFS{
			"/srv/app":                          withRunPath(prog("libgreet.so"), "$ORIGIN/lib", "", "relative"),
			"/lib/x86_64-linux-gnu/libgreet.so": {Class: elf.ELFCLASS64, Machine: elf.EM_AARCH64, Type: elf.ET_DYN},
		}),
		cache: ldso.Cache{{Name: "libc.so.6", Path: "/lib/x86_64-linux-gnu/libc.so.6"}},
		prog:  "/srv/app",
		libs:  []string{"PT_INTERP " + interp},
		missing: []string{"/srv/app needs libgreet.so: not found in /srv/lib, /etc/ld.so.cache, " +
			"/lib/x86_64-linux-gnu/libgreet.so (ELFCLASS64 EM_AARCH64, want ELFCLASS64 EM_X86_64), " +
			"/usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib"},
	}, {
		name:    "a missing interpreter",
		fs:      fakeFS{"/app": prog()},
		prog:    "/app",
		missing: []string{"/app needs its interpreter " + interp + ": not there"},
	}, {
		name: "a needed path is opened as it is, with $ORIGIN",
		fs: system(fakeFS{
			"/srv/app":         prog("$ORIGIN/plugin.so", "/abs/libq.so", "sub/libr.so"),
			"/srv/plugin.so":   lib(""),
			"/abs/libq.so":     lib(""),
			"/lib/sub/libr.so": lib(""),
		}),
		prog:    "/srv/app",
		libs:    []string{"PT_INTERP " + interp, "path /srv/plugin.so", "path /abs/libq.so"},
		missing: []string{"/srv/app needs sub/libr.so: not found in sub/libr.so (relative to the working directory, which is not known here)"},
	}, {
		name: "each library is loaded once, by name, soname or path",
		fs: system(fakeFS{
			"/srv/app":                           withRunPath(prog("liba.so", "libb.so", "libc.so.6", "/srv/liba.so"), "/srv"),
			"/srv/liba.so":                       lib("liba.so", "libshared.so.1", "libc.so.6"),
			"/srv/libb.so":                       lib("libb.so", "libshared.so", "libgone.so"),
			"/usr/lib/libshared.so.1":            lib("libshared.so.1", "libgone.so"),
			"/lib/x86_64-linux-gnu/libshared.so": lib("libshared.so.1"),
		}),
		prog: "/srv/app",
		libs: []string{
			"PT_INTERP " + interp,
			"DT_RUNPATH /srv/liba.so",
			"DT_RUNPATH /srv/libb.so",
			"default directory /lib/x86_64-linux-gnu/libc.so.6",
			"default directory /usr/lib/libshared.so.1",
			"default directory /lib/x86_64-linux-gnu/libshared.so",
		},
		missing: []string{"/srv/libb.so needs libgone.so: not found in /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ldso.Resolve(tt.fs, tt.cache, tt.prog)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			var libs, missing []string
			for _, l := range res.Libs {
				libs = append(libs, fmt.Sprintf("%s %s", l.How, l.Path))
				if l.Object != tt.fs[path.Clean(l.Path)] {
					t.Errorf("%s: object is not the file's", l.Path)
				}
			}
			for _, m := range res.Missing {
				missing = append(missing, m.String())
			}
			if diff := cmp.Diff(tt.libs, libs); diff != "" {
				t.Errorf("libs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.missing, missing); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResolveRecordsOrigins: what a builder needs to place a library found
// through a path list where the image's loader will look for it.
func TestResolveRecordsOrigins(t *testing.T) {
	fsys := system(fakeFS{
		"/b/bin/app":       withRPath(prog("libx.so"), "$ORIGIN/../lib"),
		"/b/lib/libx.so":   withRunPath(lib("libx.so", "liby.so"), "$ORIGIN/y"),
		"/b/lib/y/liby.so": lib("liby.so"),
	})
	res, err := ldso.Resolve(fsys, nil, "/b/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	var got []ldso.Lib
	for _, l := range res.Libs {
		l.Object = nil
		got = append(got, l)
	}
	want := []ldso.Lib{
		{Name: interp, Path: interp, How: ldso.ViaInterp, Needer: "/b/bin/app"},
		{Name: "libx.so", Path: "/b/bin/../lib/libx.so", How: ldso.ViaRPath, Dir: "$ORIGIN/../lib", Owner: "/b/bin/app", Needer: "/b/bin/app"},
		{Name: "liby.so", Path: "/b/bin/../lib/y/liby.so", How: ldso.ViaRunPath, Dir: "$ORIGIN/y", Owner: "/b/bin/../lib/libx.so", Needer: "/b/bin/../lib/libx.so"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("libs (-want +got):\n%s", diff)
	}
}

func TestResolveUnreadableProgram(t *testing.T) {
	if _, err := ldso.Resolve(fakeFS{}, nil, "/nowhere"); err == nil {
		t.Error("Resolve of a missing program succeeded")
	}
}

func TestExpand(t *testing.T) {
	tests := []struct{ in, want string }{
		{"$ORIGIN/../lib", "/o/../lib"},
		{"${ORIGIN}/lib", "/o/lib"},
		{"$ORIGIN", "/o"},
		{"$ORIGINAL/x", "$ORIGINAL/x"},
		{"$ORIGIN_X", "$ORIGIN_X"},
		{"/a:$ORIGIN", "/a:/o"},
		{"$LIB/x", "$LIB/x"},
		{"$", "$"},
		{"$ORIGIN$ORIGIN", "/o/o"},
		{"/plain", "/plain"},
	}
	for _, tt := range tests {
		if got := ldso.Expand(tt.in, "/o"); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDefaultDirs(t *testing.T) {
	tests := []struct {
		class   elf.Class
		machine elf.Machine
		want    string
	}{
		{elf.ELFCLASS64, elf.EM_X86_64, "/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /lib /usr/lib"},
		{elf.ELFCLASS64, elf.EM_AARCH64, "/lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu /lib64 /usr/lib64 /lib /usr/lib"},
		{elf.ELFCLASS64, elf.EM_RISCV, "/lib64 /usr/lib64 /lib /usr/lib"},
		{elf.ELFCLASS32, elf.EM_386, "/lib /usr/lib"},
	}
	for _, tt := range tests {
		if got := strings.Join(ldso.DefaultDirs(tt.class, tt.machine), " "); got != tt.want {
			t.Errorf("DefaultDirs(%v, %v) = %s, want %s", tt.class, tt.machine, got, tt.want)
		}
	}
}

// TestResolveHost resolves a program of the machine the test runs on
// against its real file system and cache: everything is found.
func TestResolveHost(t *testing.T) {
	ls, err := filepath.EvalSymlinks("/bin/ls")
	if err != nil {
		t.Skipf("no /bin/ls to resolve: %v", err)
	}
	cache, err := ldso.HostCache()
	if err != nil {
		t.Fatal(err)
	}
	res, err := ldso.Resolve(ldso.Host{}, cache, ls)
	if err != nil {
		t.Fatal(err)
	}
	if res.Program.Interp == "" {
		t.Skipf("%s is static", ls)
	}
	if len(res.Missing) > 0 {
		t.Errorf("missing: %v", res.Missing)
	}
	names := map[string]bool{}
	for _, l := range res.Libs {
		names[path.Base(l.Name)] = true
	}
	if !names[path.Base(res.Program.Interp)] || !names["libc.so.6"] {
		t.Errorf("libs of %s: %+v, want the interpreter and libc.so.6", ls, res.Libs)
	}
}
