package lint

import (
	"archive/tar"
	"debug/elf"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/image/ldso/ldsotest"
)

// content is a regular file holding body.
func content(name string, body []byte) ent {
	return ent{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}

// object is an ELF file.
func object(name string, e ldsotest.ELF) ent {
	return ent{name: name, typ: tar.TypeReg, mode: 0o755, body: e.Bytes()}
}

const ldPath = "/lib64/ld-linux-x86-64.so.2"

// The files of the program ldsotest.Greet builds, as --add-binary puts
// them in an image.
var (
	greetProgram = object("app/bin/greet", ldsotest.ELF{Interp: ldPath, Needed: []string{"libgreet.so", "libc.so.6"}, RunPath: "$ORIGIN/../lib"})
	greetLib     = object("app/lib/libgreet.so", ldsotest.ELF{Needed: []string{"libc.so.6"}})
	ldLinux      = object("lib64/ld-linux-x86-64.so.2", ldsotest.ELF{Soname: "ld-linux-x86-64.so.2"})
	libcFile     = object("lib/x86_64-linux-gnu/libc.so.6", ldsotest.ELF{Interp: ldPath, Soname: "libc.so.6", Needed: []string{"ld-linux-x86-64.so.2"}})
)

func TestLayersMissingFiles(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]ent
		want   []Finding
	}{{
		name:   "a program with everything it needs",
		layers: [][]ent{{greetProgram, greetLib, ldLinux, libcFile}},
	}, {
		name:   "a program without its library",
		layers: [][]ent{{greetProgram, ldLinux, libcFile}},
		want:   []Finding{{"/app/bin/greet", MissingLibrary, "libgreet.so"}},
	}, {
		name:   "a program added alone, with --add",
		layers: [][]ent{{greetProgram}},
		want: []Finding{
			{"/app/bin/greet", MissingInterpreter, ldPath},
			{"/app/bin/greet", MissingLibrary, "libc.so.6"},
			{"/app/bin/greet", MissingLibrary, "libgreet.so"},
		},
	}, {
		name: "merged /usr: found through symlinked directories and a symlinked interpreter",
		layers: [][]ent{{
			symlink("lib", "usr/lib"), symlink("lib64", "usr/lib64"),
			object("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", ldsotest.ELF{Soname: "ld-linux-x86-64.so.2"}),
			symlink("usr/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
			object("usr/lib/x86_64-linux-gnu/libc.so.6", ldsotest.ELF{Soname: "libc.so.6", Needed: []string{"ld-linux-x86-64.so.2"}}),
			object("usr/lib/x86_64-linux-gnu/libz.so.1.3", ldsotest.ELF{Soname: "libz.so.1"}),
			symlink("usr/lib/x86_64-linux-gnu/libz.so.1", "libz.so.1.3"),
			object("usr/bin/app", ldsotest.ELF{Interp: ldPath, Needed: []string{"libz.so.1", "libc.so.6"}}),
		}},
	}, {
		name:   "a library's own need, reported on the library",
		layers: [][]ent{{greetProgram, ldLinux, libcFile, object("app/lib/libgreet.so", ldsotest.ELF{Needed: []string{"libfmt.so.9", "libc.so.6"}})}},
		want:   []Finding{{"/app/lib/libgreet.so", MissingLibrary, "libfmt.so.9"}},
	}, {
		name: "the image's own ld.so.cache is searched",
		layers: [][]ent{{
			greetProgram, ldLinux, libcFile,
			object("opt/greet/libgreet.so", ldsotest.ELF{}),
			content("etc/ld.so.cache", ldsotest.Cache(ldsotest.CacheEntry{Name: "libgreet.so", Path: "/opt/greet/libgreet.so"})),
		}},
	}, {
		name: "an unreadable ld.so.cache is ignored, as ld.so ignores it",
		layers: [][]ent{{
			greetProgram, ldLinux, libcFile,
			object("opt/greet/libgreet.so", ldsotest.ELF{}),
			content("etc/ld.so.cache", []byte("glibc-ld.so.cache1.1 but cut short")),
		}},
		want: []Finding{{"/app/bin/greet", MissingLibrary, "libgreet.so"}},
	}, {
		name:   "a whiteout removes a library a lower layer had",
		layers: [][]ent{{greetProgram, greetLib, ldLinux, libcFile}, {file("app/lib/.wh.libgreet.so", 0)}},
		want:   []Finding{{"/app/bin/greet", MissingLibrary, "libgreet.so"}},
	}, {
		name: "a library for another machine does not do",
		layers: [][]ent{{
			greetProgram, greetLib, ldLinux,
			object("lib/x86_64-linux-gnu/libc.so.6", ldsotest.ELF{Machine: elf.EM_AARCH64, Soname: "libc.so.6"}),
		}},
		want: []Finding{{"/app/bin/greet", MissingLibrary, "libc.so.6"}},
	}, {
		name: "a library no program loads is judged alone",
		layers: [][]ent{{
			ldLinux, libcFile,
			object("usr/lib/plugins/render.so", ldsotest.ELF{Needed: []string{"libcairo.so.2", "libc.so.6"}}),
		}},
		want: []Finding{{"/usr/lib/plugins/render.so", MissingLibrary, "libcairo.so.2"}},
	}, {
		name: "a library is judged with the DT_RPATH of the program that loads it",
		layers: [][]ent{{
			ldLinux, libcFile,
			object("opt/a/bin/app", ldsotest.ELF{Interp: ldPath, Needed: []string{"libx.so"}, RPath: "/opt/a/lib"}),
			object("opt/a/lib/libx.so", ldsotest.ELF{Needed: []string{"liby.so"}}),
			object("opt/a/lib/liby.so", ldsotest.ELF{}),
		}},
	}, {
		name: "static programs, scripts, short and broken ELF files need nothing",
		layers: [][]ent{{
			object("app", ldsotest.ELF{Type: elf.ET_EXEC}),
			content("run.sh", []byte("#!/bin/sh\nexec /app\n")),
			content("tiny", []byte("\x7fE")),
			content("broken", []byte("\x7fELF and then nothing an ELF parser wants")),
			object("module.o", ldsotest.ELF{Type: elf.ET_REL, Needed: []string{"libnothing.so"}}),
		}},
	}, {
		name: "symlink loops end the search",
		layers: [][]ent{{
			greetProgram, ldLinux, libcFile, greetLib,
			symlink("usr/lib/x86_64-linux-gnu", "../../usr/lib/x86_64-linux-gnu"),
			object("usr/bin/tool", ldsotest.ELF{Interp: ldPath, Needed: []string{"libloop.so"}}),
		}},
		want: []Finding{{"/usr/bin/tool", MissingLibrary, "libloop.so"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tars [][]byte
			for _, l := range tt.layers {
				tars = append(tars, layer(t, l...))
			}
			got, err := Layers(readers(tars...))
			if err != nil {
				t.Fatalf("Layers: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Layers mismatch (-want +got):\n%s", diff)
			}
			for _, f := range got {
				if !f.Fatal() {
					t.Errorf("%+v is not fatal", f)
				}
			}
		})
	}
}

// TestFatal: only what keeps a program from starting is fatal.
func TestFatal(t *testing.T) {
	for _, c := range []Category{Shell, PackageManager, Compiler, Interpreter, RemoteAccess, Debugger, NetworkTool} {
		if (Finding{Category: c}).Fatal() {
			t.Errorf("%s is fatal", c)
		}
	}
	for _, c := range []Category{MissingInterpreter, MissingLibrary} {
		if !(Finding{Category: c}).Fatal() {
			t.Errorf("%s is not fatal", c)
		}
	}
}
