package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"
)

// fuzzOpts keeps fuzzed layers small.
var fuzzOpts = Options{MaxBytes: 1 << 20, MaxEntries: 256}

// FuzzUnpack feeds arbitrary bytes to Unpack: it must not panic and must
// not create or change anything outside the layer directory.
func FuzzUnpack(f *testing.F) {
	for _, ents := range fuzzSeeds("/fuzz-outside") {
		f.Add(mustTar(f, ents...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newSandbox(t)
		Unpack(context.Background(), bytes.NewReader(data), s.dir, fuzzOpts)
		s.checkConfined(t)
	})
}

// FuzzLayerScript fuzzes the order and kind of entries rather than tar
// framing, which mutations mostly break. Each line of the script is
// "TYPE NAME [TARGET]", TYPE one of f d l h c (file, dir, symlink,
// hardlink, char device); whiteouts are files named .wh.*. Absolute symlink targets are moved
// under the sandbox's outside directory, so that an escape would show there
// instead of touching the machine.
func FuzzLayerScript(f *testing.F) {
	f.Add("l link ../outside\nf link/pwned")
	f.Add("l up ../../..\nd up/tmp\nf up/tmp/x")
	f.Add("l a b\nl b c/../..\nd c\nf a/outside/p")
	f.Add("f a\nh b a\nl c /\nh d c\nd c/etc\nf c/.wh.etc")
	f.Add("d a\nf a/.wh..wh..opq\nf a/.wh.b\nf a/b\nd a")
	f.Fuzz(func(t *testing.T, script string) {
		s := newSandbox(t)
		ents := scriptEntries(script, s.outside)
		data, err := tarOf(ents...)
		if err != nil {
			return // not encodable, e.g. a NUL in a name
		}
		Unpack(context.Background(), bytes.NewReader(data), s.dir, fuzzOpts)
		s.checkConfined(t)
	})
}

func scriptEntries(script, outside string) []ent {
	var ents []ent
	for _, line := range strings.Split(script, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || len(ents) >= 64 {
			continue
		}
		name, target := fields[1], ""
		if len(fields) > 2 {
			target = fields[2]
		}
		if strings.HasPrefix(target, "/") {
			target = outside + target
		}
		switch fields[0] {
		case "f":
			ents = append(ents, file(name, "x"))
		case "d":
			ents = append(ents, dirEnt(name))
		case "l":
			ents = append(ents, symlink(name, target))
		case "h":
			ents = append(ents, hardlink(name, target))
		case "c":
			ents = append(ents, special(name, tar.TypeChar, 0o600))
		}
	}
	return ents
}

// fuzzSeeds are valid and malicious layers; abs stands for an absolute
// path outside the layer.
func fuzzSeeds(abs string) [][]ent {
	return [][]ent{
		{dirEnt("./"), dirEnt("etc/"), file("etc/hostname", "moat"), symlink("bin", "usr/bin"),
			file("usr/bin/sh", "#!"), hardlink("usr/bin/ash", "usr/bin/sh"), file("bin/ls", "x")},
		{dirEnt("a/"), file("a/.wh.b", ""), file("a/.wh..wh..opq", ""), file(".wh..wh.plnk/1", "")},
		{file("../sentinel", "pwned")},
		{file("/etc/passwd", "pwned")},
		{symlink("link", "../outside"), file("link/pwned", "x")},
		{symlink("link", abs), dirEnt("link/sub/"), file("link/sub/x", "x")},
		{symlink("up", "../../.."), file("up/tmp/pwned", "x")},
		{symlink("a", "b"), symlink("b", "c/../.."), dirEnt("c/"), file("a/outside/pwned", "x")},
		{hardlink("h", "../sentinel")},
		{special("dev/null", tar.TypeChar, 0o666), file("bin/su", "x").with(mode(0o4755))},
		{dirEnt("d/"), file("d/f", "x"), file("d", "file over dir"), symlink("d", "/")},
	}
}
