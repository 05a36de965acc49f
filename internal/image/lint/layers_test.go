package lint

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/image/ldso/ldsotest"
)

// ent is one tar entry of a test layer.
type ent struct {
	name string
	typ  byte
	mode int64
	link string // symlink or hardlink target
	body []byte // a regular file's content
}

func file(name string, mode int64) ent { return ent{name: name, typ: tar.TypeReg, mode: mode} }
func dir(name string) ent              { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) ent {
	return ent{name: name, typ: tar.TypeSymlink, mode: 0o777, link: to}
}
func hardlink(name, to string, mode int64) ent {
	return ent{name: name, typ: tar.TypeLink, mode: mode, link: to}
}

// layer writes ents as an uncompressed tar.
func layer(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatalf("write %q: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("close tar: %v", err)
	}
	return buf.Bytes()
}

func readers(layers ...[]byte) []io.Reader {
	rs := make([]io.Reader, len(layers))
	for i, l := range layers {
		rs[i] = bytes.NewReader(l)
	}
	return rs
}

func TestLayers(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]ent
		want   []Finding
	}{{
		name:   "empty image",
		layers: nil,
	}, {
		name: "only non-findings",
		layers: [][]ent{{
			dir("usr/share/bash-completion/"),
			dir("usr/lib/python3.11/"),
			file("usr/share/doc/python3/changelog", 0o644),
			file("usr/local/bin/node_exporter", 0o755),
			file("app", 0o755),
		}},
	}, {
		name: "paths cleaned and sorted",
		layers: [][]ent{{
			file("./usr/bin/perl", 0o755),
			file("usr/bin/awk", 0o755),
			file("/bin/sh", 0o755),
		}},
		want: []Finding{
			{"/bin/sh", Shell, "sh"},
			{"/usr/bin/awk", Interpreter, "awk"},
			{"/usr/bin/perl", Interpreter, "perl"},
		},
	}, {
		name: "whiteout removes a shell from a lower layer",
		layers: [][]ent{
			{dir("bin/"), file("bin/sh", 0o755), file("bin/app", 0o755)},
			{file("bin/.wh.sh", 0o644)},
		},
	}, {
		name: "whiteout of a directory removes everything under it",
		layers: [][]ent{
			{dir("opt/tools/bin/"), file("opt/tools/bin/curl", 0o755), file("opt/keep/gdb", 0o755)},
			{file("opt/.wh.tools", 0o644)},
		},
		want: []Finding{{"/opt/keep/gdb", Debugger, "gdb"}},
	}, {
		name: "whiteout does not hide its own layer",
		layers: [][]ent{
			{file("bin/bash", 0o755)},
			{file("bin/sh", 0o755), file("bin/.wh.sh", 0o644)},
		},
		want: []Finding{
			{"/bin/bash", Shell, "bash"},
			{"/bin/sh", Shell, "sh"},
		},
	}, {
		name: "opaque directory hides lower content, keeps same-layer content",
		layers: [][]ent{
			{file("bin/bash", 0o755), file("bin/sh", 0o755), file("usr/bin/wget", 0o755)},
			// The same-layer entry comes before the marker on purpose.
			{file("bin/busybox", 0o755), file("bin/.wh..wh..opq", 0o644)},
		},
		want: []Finding{
			{"/bin/busybox", Shell, "busybox"},
			{"/usr/bin/wget", NetworkTool, "wget"},
		},
	}, {
		name: "opaque root",
		layers: [][]ent{
			{file("bin/sh", 0o755)},
			{file(".wh..wh..opq", 0o644), file("usr/bin/curl", 0o755)},
		},
		want: []Finding{{"/usr/bin/curl", NetworkTool, "curl"}},
	}, {
		name: "later layer re-adds a whited-out file",
		layers: [][]ent{
			{file("bin/sh", 0o755)},
			{file("bin/.wh.sh", 0o644)},
			{file("bin/sh", 0o755)},
		},
		want: []Finding{{"/bin/sh", Shell, "sh"}},
	}, {
		name: "upper layer changes the mode",
		layers: [][]ent{
			{file("usr/bin/python3.11", 0o755), file("usr/bin/ssh", 0o644)},
			{file("usr/bin/python3.11", 0o644), file("usr/bin/ssh", 0o755)},
		},
		want: []Finding{{"/usr/bin/ssh", RemoteAccess, "ssh"}},
	}, {
		name: "file replaces a lower directory and its contents",
		layers: [][]ent{
			{dir("tools/"), file("tools/bash", 0o755)},
			{file("tools", 0o644)},
		},
	}, {
		name: "directory over directory merges",
		layers: [][]ent{
			{dir("tools/"), file("tools/bash", 0o755)},
			{dir("tools/"), file("tools/strace", 0o755)},
		},
		want: []Finding{
			{"/tools/bash", Shell, "bash"},
			{"/tools/strace", Debugger, "strace"},
		},
	}, {
		name: "symlink farm",
		layers: [][]ent{{
			file("bin/busybox", 0o755),
			symlink("bin/sh", "busybox"),
			symlink("bin/wget", "/bin/busybox"),
			symlink("usr/bin/awk", "../../bin/busybox"),
			symlink("bin/ls", "busybox"),
		}},
		want: []Finding{
			{"/bin/busybox", Shell, "busybox"},
			{"/bin/sh", Shell, "sh"},
			{"/bin/wget", NetworkTool, "wget"},
			{"/usr/bin/awk", Interpreter, "awk"},
		},
	}, {
		name:   "dangling symlink is still reported",
		layers: [][]ent{{symlink("bin/sh", "/nowhere")}},
		want:   []Finding{{"/bin/sh", Shell, "sh"}},
	}, {
		name: "hardlinks take their target's mode",
		layers: [][]ent{{
			file("bin/busybox", 0o755),
			hardlink("bin/sh", "bin/busybox", 0),
			hardlink("bin/nc", "./bin/busybox", 0o644),
			file("data/blob", 0o644),
			hardlink("data/perl", "data/blob", 0o755),
		}},
		want: []Finding{
			{"/bin/busybox", Shell, "busybox"},
			{"/bin/nc", NetworkTool, "nc"},
			{"/bin/sh", Shell, "sh"},
		},
	}, {
		name: "hardlink to a target in a lower layer",
		layers: [][]ent{
			{file("usr/bin/python3.11", 0o755)},
			{hardlink("usr/bin/python3", "usr/bin/python3.11", 0)},
		},
		want: []Finding{
			{"/usr/bin/python3", Interpreter, "python3"},
			{"/usr/bin/python3.11", Interpreter, "python3.11"},
		},
	}, {
		name: "hardlink whose target was whited out keeps its own mode",
		layers: [][]ent{
			{file("bin/bash", 0o755), hardlink("bin/sh", "bin/bash", 0o755)},
			{file("bin/.wh.bash", 0o644)},
		},
		want: []Finding{{"/bin/sh", Shell, "sh"}},
	}, {
		name: "reserved whiteout names are neither files nor whiteouts",
		layers: [][]ent{
			{file("bin/sh", 0o755), file(".wh.plnk", 0o755)},
			{file(".wh..wh.plnk/sh", 0o755), file("bin/.wh..wh.sh", 0o755), file("bin/.wh.", 0o644)},
		},
		want: []Finding{{"/bin/sh", Shell, "sh"}},
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
		})
	}
}

func TestLayersSkipsMetadataEntries(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag:   tar.TypeXGlobalHeader,
		Name:       "pax_global_header",
		PAXRecords: map[string]string{"comment": "sh"},
	}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatalf("write global header: %v", err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: "dev/console", Typeflag: tar.TypeChar, Mode: 0o755}); err != nil {
		t.Fatalf("write device: %v", err)
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("close tar: %v", err)
	}
	got, err := Layers(readers(buf.Bytes()))
	if err != nil {
		t.Fatalf("Layers: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("Layers = %+v, want no findings", got)
	}
}

func TestLayersError(t *testing.T) {
	good := layer(t, file("bin/sh", 0o755))
	bad := bytes.Repeat([]byte("not a tar "), 100)
	_, err := Layers(readers(good, bad))
	if err == nil {
		t.Fatal("Layers of a corrupt layer succeeded")
	}
	if !strings.Contains(err.Error(), "layer 1") {
		t.Errorf("error %q does not name layer 1", err)
	}
}

func FuzzLayers(f *testing.F) {
	f.Add([]byte{})
	f.Add(layer(f, file("bin/sh", 0o755), symlink("bin/nc", "sh"), hardlink("bin/ash", "bin/sh", 0)))
	f.Add(layer(f, dir("bin/"), file("bin/.wh..wh..opq", 0), file("bin/.wh.sh", 0), file(".wh...", 0)))
	f.Add(layer(f, hardlink("a", "b", 0o755), hardlink("b", "a", 0o755), file("../../x/../sh", 0o755)))
	f.Add(layer(f, greetProgram, ldLinux, libcFile, symlink("lib64", "lib"), symlink("usr/lib/x", "../../usr/lib/x"),
		content("etc/ld.so.cache", ldsotest.Cache(ldsotest.CacheEntry{Name: "libgreet.so", Path: "/lib64/libgreet.so"}))))
	f.Fuzz(func(t *testing.T, data []byte) {
		findings, err := Layers([]io.Reader{bytes.NewReader(data)})
		if err != nil {
			return
		}
		for i, fd := range findings {
			if !strings.HasPrefix(fd.Path, "/") {
				t.Errorf("finding %+v has a relative path", fd)
			}
			if i == 0 {
				continue
			}
			prev := findings[i-1]
			if prev.Path > fd.Path || prev.Path == fd.Path && (prev.Category > fd.Category || prev.Category == fd.Category && prev.Name >= fd.Name) {
				t.Errorf("findings not sorted and unique: %+v then %+v", prev, fd)
			}
		}
	})
}
