package layer

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

// TestUnpackRefuses checks that every unsafe layer fails with an error naming
// the entry and that nothing outside the layer directory is touched.
func TestUnpackRefuses(t *testing.T) {
	tests := []struct {
		name    string
		ents    func(s sandbox) []ent
		opts    Options
		entry   string // must appear quoted in the error; "sentinel" means s.sentinel
		want    string // must appear in the error
		invalid bool   // error is an errs.ErrInvalid refusal
	}{
		{
			name:  "dotdot name",
			ents:  func(sandbox) []ent { return []ent{file("../../etc/passwd", "x")} },
			entry: "../../etc/passwd", want: "path escapes the layer", invalid: true,
		},
		{
			name:  "dotdot into sibling",
			ents:  func(sandbox) []ent { return []ent{file("../sentinel", "pwned")} },
			entry: "../sentinel", want: "path escapes the layer", invalid: true,
		},
		{
			name:  "dotdot inside",
			ents:  func(sandbox) []ent { return []ent{file("a/../b", "x")} },
			entry: "a/../b", want: "path escapes the layer", invalid: true,
		},
		{
			name:  "absolute name",
			ents:  func(s sandbox) []ent { return []ent{file(s.sentinel, "pwned")} },
			entry: "sentinel", want: "absolute path escapes the layer", invalid: true,
		},
		{
			name:  "dotdot directory",
			ents:  func(sandbox) []ent { return []ent{dirEnt("../outside/d/")} },
			entry: "../outside/d/", want: "path escapes the layer", invalid: true,
		},
		{
			name:  "dotdot symlink name",
			ents:  func(sandbox) []ent { return []ent{symlink("../outside/l", "/")} },
			entry: "../outside/l", want: "path escapes the layer", invalid: true,
		},
		{
			name:  "dotdot whiteout",
			ents:  func(sandbox) []ent { return []ent{file("../outside/.wh.x", "")} },
			entry: "../outside/.wh.x", want: "path escapes the layer", invalid: true,
		},
		{
			name:  "whiteout of dotdot",
			ents:  func(sandbox) []ent { return []ent{file("a/.wh...", "")} },
			entry: "a/.wh...", want: "whiteout names no file", invalid: true,
		},
		{
			name:  "whiteout of dot",
			ents:  func(sandbox) []ent { return []ent{file("a/.wh..", "")} },
			entry: "a/.wh..", want: "whiteout names no file", invalid: true,
		},
		{
			name:  "empty whiteout",
			ents:  func(sandbox) []ent { return []ent{file(".wh.", "")} },
			entry: ".wh.", want: "whiteout names no file", invalid: true,
		},
		{
			name:  "file as layer root",
			ents:  func(sandbox) []ent { return []ent{file(".", "x")} },
			entry: ".", want: "only a directory may replace the layer root", invalid: true,
		},
		{
			name:  "name too long",
			ents:  func(sandbox) []ent { return []ent{file(strings.Repeat("a/", 2048)+"f", "x")} },
			entry: strings.Repeat("a/", 32) + "...", want: "name longer than 4095 bytes", invalid: true,
		},
		{
			name:  "absolute symlink then write through it",
			ents:  func(s sandbox) []ent { return []ent{symlink("link", s.outside), file("link/pwned", "x")} },
			entry: "link/pwned", want: "path leaves the layer through a symlink", invalid: true,
		},
		{
			name:  "relative escaping symlink then write through it",
			ents:  func(sandbox) []ent { return []ent{symlink("link", "../outside"), file("link/pwned", "x")} },
			entry: "link/pwned", want: "path leaves the layer through a symlink", invalid: true,
		},
		{
			name:  "symlink to filesystem root then deep write",
			ents:  func(sandbox) []ent { return []ent{symlink("up", "../../.."), file("up/tmp/pwned", "x")} },
			entry: "up/tmp/pwned", want: "path leaves the layer through a symlink", invalid: true,
		},
		{
			name: "symlink chain",
			ents: func(s sandbox) []ent {
				return []ent{symlink("a", "b"), symlink("b", "c/../.."), dirEnt("c/"), file("a/outside/pwned", "x")}
			},
			entry: "a/outside/pwned", want: "path leaves the layer through a symlink", invalid: true,
		},
		{
			name:  "directory through symlink",
			ents:  func(s sandbox) []ent { return []ent{symlink("link", s.outside), dirEnt("link/sub/")} },
			entry: "link/sub/", want: "path leaves the layer through a symlink", invalid: true,
		},
		{
			name:  "symlink through symlink",
			ents:  func(s sandbox) []ent { return []ent{symlink("link", s.outside), symlink("link/l", "/")} },
			entry: "link/l", want: "path leaves the layer through a symlink", invalid: true,
		},
		{
			name: "hardlink through symlink",
			ents: func(s sandbox) []ent {
				return []ent{file("f", "x"), symlink("link", s.outside), hardlink("link/h", "f")}
			},
			entry: "link/h", want: "path leaves the layer through a symlink", invalid: true,
		},
		{
			name:  "hardlink to file behind symlink",
			ents:  func(s sandbox) []ent { return []ent{symlink("link", s.parent), hardlink("h", "link/sentinel")} },
			entry: "h", want: "path leaves the layer through a symlink", invalid: true,
		},
		{
			name:  "whiteout through symlink",
			ents:  func(s sandbox) []ent { return []ent{symlink("link", s.outside), file("link/.wh.x", "")} },
			entry: "link/.wh.x", want: "path leaves the layer through a symlink", invalid: true,
		},
		{
			name:  "opaque through symlink",
			ents:  func(s sandbox) []ent { return []ent{symlink("link", s.outside), file("link/.wh..wh..opq", "")} },
			entry: "link/.wh..wh..opq", want: "path leaves the layer through a symlink", invalid: true,
		},
		{
			name:  "hardlink dotdot",
			ents:  func(sandbox) []ent { return []ent{hardlink("h", "../sentinel")} },
			entry: "h", want: `hardlink target "../sentinel": path escapes the layer`, invalid: true,
		},
		{
			name:  "hardlink absolute",
			ents:  func(s sandbox) []ent { return []ent{hardlink("h", s.sentinel)} },
			entry: "h", want: "absolute path escapes the layer", invalid: true,
		},
		{
			name:  "hardlink to layer root",
			ents:  func(sandbox) []ent { return []ent{hardlink("h", "./")} },
			entry: "h", want: "not a file in the layer", invalid: true,
		},
		{
			name:  "hardlink to itself",
			ents:  func(sandbox) []ent { return []ent{file("f", "x"), hardlink("f", "./f")} },
			entry: "f", want: "hardlink to itself", invalid: true,
		},
		{
			name:  "hardlink to missing entry",
			ents:  func(sandbox) []ent { return []ent{hardlink("h", "nothing")} },
			entry: "h", want: "no such file",
		},
		{
			name:  "char device",
			ents:  func(sandbox) []ent { return []ent{special("dev/null", tar.TypeChar, 0o666)} },
			entry: "dev/null", want: "device nodes are not allowed", invalid: true,
		},
		{
			name:  "block device",
			ents:  func(sandbox) []ent { return []ent{special("dev/sda", tar.TypeBlock, 0o660)} },
			entry: "dev/sda", want: "device nodes are not allowed", invalid: true,
		},
		{
			name:  "fifo",
			ents:  func(sandbox) []ent { return []ent{special("run/fifo", tar.TypeFifo, 0o600)} },
			entry: "run/fifo", want: "device nodes are not allowed", invalid: true,
		},
		{
			name:  "unsupported type",
			ents:  func(sandbox) []ent { return []ent{special("x", 'Z', 0o600)} },
			entry: "x", want: "unsupported entry type", invalid: true,
		},
		{
			name: "setuid file",
			ents: func(sandbox) []ent {
				return []ent{file("bin/su", "x").with(func(h *tar.Header) { h.Mode = 0o4755 })}
			},
			entry: "bin/su", want: "setuid/setgid files are not allowed", invalid: true,
		},
		{
			name: "setgid file",
			ents: func(sandbox) []ent {
				return []ent{file("bin/wall", "x").with(func(h *tar.Header) { h.Mode = 0o2755 })}
			},
			entry: "bin/wall", want: "setuid/setgid files are not allowed", invalid: true,
		},
		{
			name:  "too many bytes in one file",
			ents:  func(sandbox) []ent { return []ent{file("big", strings.Repeat("x", 11))} },
			opts:  Options{MaxBytes: 10},
			entry: "big", want: "layer content exceeds 10 bytes", invalid: true,
		},
		{
			name:  "too many bytes in total",
			ents:  func(sandbox) []ent { return []ent{file("a", "12345"), file("b", "123456")} },
			opts:  Options{MaxBytes: 10},
			entry: "b", want: "layer content exceeds 10 bytes", invalid: true,
		},
		{
			name:  "too many entries",
			ents:  func(sandbox) []ent { return []ent{dirEnt("a/"), file("a/b", ""), file("a/c", "")} },
			opts:  Options{MaxEntries: 2},
			entry: "a/c", want: "layer has more than 2 entries", invalid: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := s.unpack(t, mustTar(t, tt.ents(s)...), tt.opts)
			if err == nil {
				t.Fatal("Unpack succeeded, want error")
			}
			t.Logf("error: %v", err)
			entry := tt.entry
			if entry == "sentinel" {
				entry = s.sentinel
			}
			if q := `layer entry "` + entry + `"`; !strings.Contains(err.Error(), q) {
				t.Errorf("error %q does not name the entry (%s)", err, q)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if got := errors.Is(err, errs.ErrInvalid); got != tt.invalid {
				t.Errorf("errors.Is(err, errs.ErrInvalid) = %v, want %v", got, tt.invalid)
			}
			s.checkConfined(t)
		})
	}
}

// TestUnpackLimitExact checks that a layer exactly at both limits unpacks.
func TestUnpackLimitExact(t *testing.T) {
	s := newSandbox(t)
	st, err := s.unpack(t, mustTar(t, file("a", "12345"), file("b", "12345")), Options{MaxBytes: 10, MaxEntries: 2})
	if err != nil {
		t.Fatalf("Unpack at exactly the limits: %v", err)
	}
	if want := (Stats{Entries: 2, Bytes: 10}); st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
}

// TestUnpackSymlinksStayPut checks that symlinks pointing outside are created
// verbatim and that later entries replace the link, never its target.
func TestUnpackSymlinksStayPut(t *testing.T) {
	s := newSandbox(t)
	ents := []ent{
		symlink("abs", s.sentinel),
		symlink("rel", "../sentinel"),
		symlink("dir", s.outside),
		symlink("keep", s.sentinel),
		hardlink("hl", "keep"), // a hardlink to the symlink itself
		file("abs", "replaced"),
		file("rel", "replaced"),
		dirEnt("dir/"),
		file("dir/inside", "x"),
	}
	if _, err := s.unpack(t, mustTar(t, ents...), Options{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	s.checkConfined(t)
	for _, name := range []string{"abs", "rel"} {
		if b, err := os.ReadFile(filepath.Join(s.dir, name)); err != nil || string(b) != "replaced" {
			t.Errorf("%s = %q, %v; want a file saying replaced", name, b, err)
		}
	}
	for _, name := range []string{"keep", "hl"} {
		if got, err := os.Readlink(filepath.Join(s.dir, name)); err != nil || got != s.sentinel {
			t.Errorf("readlink %s = %q, %v; want %q", name, got, err, s.sentinel)
		}
	}
}
