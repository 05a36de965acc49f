package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnpackTree(t *testing.T) {
	s := newSandbox(t)
	ents := []ent{
		dirEnt("./"),
		dirEnt("etc/"),
		file("etc/hostname", "moat\n"),
		file("./usr/bin/tool", "#!/bin/sh\n"), // parents are implicit
		symlink("bin", "usr/bin"),
		symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
		hardlink("usr/bin/tool2", "./usr/bin/tool"),
		file("bin/via-link", "x"), // bin resolves inside the layer
	}
	st, err := s.unpack(t, mustTar(t, ents...), Options{})
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	if want := (Stats{Entries: 8, Bytes: 16}); st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
	s.checkConfined(t)
	files := map[string]string{
		"etc/hostname":     "moat\n",
		"usr/bin/tool":     "#!/bin/sh\n",
		"usr/bin/tool2":    "#!/bin/sh\n",
		"usr/bin/via-link": "x",
		"bin/tool":         "#!/bin/sh\n",
	}
	for name, want := range files {
		if b, err := os.ReadFile(filepath.Join(s.dir, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
	links := map[string]string{"bin": "usr/bin", "etc/localtime": "/usr/share/zoneinfo/UTC"}
	for name, want := range links {
		if got, err := os.Readlink(filepath.Join(s.dir, name)); err != nil || got != want {
			t.Errorf("readlink %s = %q, %v; want %q", name, got, err, want)
		}
	}
	if diff := cmp.Diff([]string{"bin", "etc", "usr"}, listDir(t, s.dir)); diff != "" {
		t.Errorf("layer root (-want +got):\n%s", diff)
	}
}

func TestUnpackDirMustExistEmpty(t *testing.T) {
	s := newSandbox(t)
	if err := os.WriteFile(filepath.Join(s.dir, "old"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	data := mustTar(t, file("f", "x"))
	if _, err := s.unpack(t, data, Options{}); err == nil || !strings.Contains(err.Error(), `not empty (has "old")`) {
		t.Errorf("Unpack into non-empty dir: err = %v, want not empty", err)
	}
	missing := filepath.Join(s.parent, "missing")
	_, err := Unpack(context.Background(), bytes.NewReader(data), missing, Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Unpack into missing dir: err = %v, want ErrNotExist", err)
	}
}

func TestUnpackContextCanceled(t *testing.T) {
	s := newSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st, err := Unpack(ctx, bytes.NewReader(mustTar(t, file("f", "x"))), s.dir, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if st.Entries != 0 || len(listDir(t, s.dir)) != 0 {
		t.Errorf("canceled unpack wrote %d entries: %q", st.Entries, listDir(t, s.dir))
	}
}

func TestUnpackTruncated(t *testing.T) {
	s := newSandbox(t)
	data := mustTar(t, file("a", "12345"), file("b", strings.Repeat("x", 2000)))
	_, err := s.unpack(t, data[:2048], Options{})
	if err == nil || !strings.Contains(err.Error(), `layer entry "b": write file: unexpected EOF`) {
		t.Errorf("err = %v, want unexpected EOF naming b", err)
	}
	s.checkConfined(t)
}

func TestUnpackGlobalHeaderSkipped(t *testing.T) {
	s := newSandbox(t)
	global := ent{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "built by git"}}}
	if _, err := s.unpack(t, mustTar(t, global, file("f", "x")), Options{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	if diff := cmp.Diff([]string{"f"}, listDir(t, s.dir)); diff != "" {
		t.Errorf("layer root (-want +got):\n%s", diff)
	}
}
