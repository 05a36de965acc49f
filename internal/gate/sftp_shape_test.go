package gate

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
)

func TestShape(t *testing.T) {
	hex := strings.Repeat("0123456789abcdef", 4)
	blob := "blobs/sha256-" + hex
	for _, tc := range []struct {
		path string // as the client sends it; shape sees inboxPath's result
		want kind
	}{
		{"", kindRoot},
		{"/", kindRoot},
		{".", kindRoot},
		{"..", kindRoot},
		{"/blobs/..", kindRoot},
		{"blobs", kindDir},
		{"/blobs/", kindDir},
		{"./blobs", kindDir},
		{"../blobs", kindDir},
		{blob, kindBlob},
		{"/" + blob, kindBlob},
		{"/blobs/x/../sha256-" + hex, kindBlob},
		{"blobs/../blobs/sha256-" + hex, kindBlob},
		{"../../" + blob, kindBlob},
		{"//blobs//sha256-" + hex + "/", kindBlob},
		{blob + ".part", kindPart},
		{"/blobs/./sha256-" + hex + ".part", kindPart},

		{blob + ".part.part", kindOther},
		{blob + ".par", kindOther},
		{blob + ".PART", kindOther},
		{blob + ".tmp", kindOther},
		{blob + "/x", kindOther},
		{blob + ".part/x", kindOther},
		{"blobs/sha256-" + strings.ToUpper(hex), kindOther},
		{"blobs/sha256-" + hex[:63] + "A", kindOther},
		{"blobs/sha256-" + hex[:63], kindOther},
		{"blobs/sha256-" + hex + "0", kindOther},
		{"blobs/sha256-" + hex[:63] + ".part", kindOther},
		{"blobs/sha256-" + hex + "0.part", kindOther},
		{"blobs/sha256-" + hex[:63] + "g", kindOther},
		{"blobs/sha256-" + hex[:62] + " 0", kindOther},
		{"blobs/sha256-" + hex[:63] + "\x00", kindOther},
		{"blobs/sha256-", kindOther},
		{"blobs/sha256-.part", kindOther},
		{"blobs/sha512-" + hex + hex, kindOther},
		{"blobs/SHA256-" + hex, kindOther},
		{"blobs/" + hex, kindOther},
		{"sha256-" + hex, kindOther},
		{"blob/sha256-" + hex, kindOther},
		{"blobsx/sha256-" + hex, kindOther},
		{"x/blobs/sha256-" + hex, kindOther},
		{"blobs/blobs/sha256-" + hex, kindOther},
		{"blobs/sub", kindOther},
		{"Blobs", kindOther},
		{"blobs.part", kindOther},
		{"etc/passwd", kindOther},
		{"/etc/shadow", kindOther},
		{"...", kindOther},
	} {
		name := inboxPath(tc.path)
		if got := shape(name); got != tc.want {
			t.Errorf("shape(inboxPath(%q) = %q) = %d, want %d", tc.path, name, got, tc.want)
		}
		for _, op := range []struct {
			name  string
			kinds []kind
		}{
			{"list", []kind{kindRoot, kindDir}},
			{"mkdir", []kind{kindDir}},
			{"write", []kind{kindBlob, kindPart}},
		} {
			err := allow(op.name, name, op.kinds...)
			if want := slices.Contains(op.kinds, tc.want); (err == nil) != want {
				t.Errorf("allow(%s, %q) = %v, want allowed=%v", op.name, name, err, want)
			}
			if err != nil && !errors.Is(err, errRefused) {
				t.Errorf("allow(%s, %q) = %v, want errRefused", op.name, name, err)
			}
		}
	}
}

func TestShapeRename(t *testing.T) {
	hex := strings.Repeat("0123456789abcdef", 4)
	other := strings.Repeat("f", 64)
	blob, part := "blobs/sha256-"+hex, "blobs/sha256-"+hex+".part"
	for _, tc := range []struct {
		from, to string // as the client sends them
		ok       bool
	}{
		{part, blob, true},
		{"/" + part, "/" + blob, true},
		{"../../" + part, "/blobs/x/../sha256-" + hex, true},

		{blob, part, false},
		{blob, blob, false},
		{part, part, false},
		{blob, "blobs/sha256-" + other, false},
		{part, "blobs/sha256-" + other, false},
		{part, "blobs/sha256-" + other + ".part", false},
		{part, "blobs/sha256-" + strings.ToUpper(hex), false},
		{part + ".part", part, false},
		{part, "blobs", false},
		{part, ".", false},
		{part, "sha256-" + hex, false},
		{part, "x", false},
		{part, "etc/shadow", false},
		{part, "blobs/sha256-" + hex + "/x", false},
		{"blobs/sha256-" + hex[:63] + ".part", "blobs/sha256-" + hex[:63], false},
		{"x.part", "x", false},
		{"sha256-" + hex + ".part", "sha256-" + hex, false},
		{"blobs.part", "blobs", false},
		{".part", ".", false},
	} {
		err := allowRename(inboxPath(tc.from), inboxPath(tc.to))
		if (err == nil) != tc.ok {
			t.Errorf("allowRename(%q, %q) = %v, want ok=%v", tc.from, tc.to, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errRefused) {
			t.Errorf("allowRename(%q, %q) = %v, want errRefused", tc.from, tc.to, err)
		}
	}
}

// inboxShape is the inbox's one shape, written independently of shape.
var inboxShape = regexp.MustCompile(`^(\.|blobs|blobs/sha256-[0-9a-f]{64}(\.part)?)$`)

// FuzzShape: whatever the client sends, a name shape accepts is the inbox
// root, its blobs directory, or a blob or part of one, and the kind shape
// gives is that name's; only a part renames, and only to its own blob.
func FuzzShape(f *testing.F) {
	hex := strings.Repeat("0123456789abcdef", 4)
	for _, s := range []string{
		"", "/", ".", "..", "blobs", "/blobs/", "blobs/sha256-" + hex, "blobs/sha256-" + hex + ".part",
		"blobs/sha256-" + hex + ".part.part", "blobs/sha256-" + hex[:63], "blobs/sha256-" + hex + "0",
		"blobs/sha256-" + strings.ToUpper(hex), "blobs/../blobs/sha256-" + hex, "../blobs/x/../sha256-" + hex,
		"blobs/sha256-" + hex + "/x", "blobs/sha256-" + hex[:63] + "\x00", "/etc/passwd",
	} {
		f.Add(s, strings.TrimSuffix(s, ".part"))
	}
	f.Fuzz(func(t *testing.T, p, q string) {
		name := inboxPath(p)
		k := shape(name)
		if k != kindOther && !inboxShape.MatchString(name) {
			t.Fatalf("shape(inboxPath(%q) = %q) = %d, want kindOther", p, name, k)
		}
		var want kind
		switch {
		case name == ".":
			want = kindRoot
		case name == "blobs":
			want = kindDir
		case inboxShape.MatchString(name) && strings.HasSuffix(name, ".part"):
			want = kindPart
		case inboxShape.MatchString(name):
			want = kindBlob
		}
		if k != want {
			t.Fatalf("shape(inboxPath(%q) = %q) = %d, want %d", p, name, k, want)
		}
		// The one rename: a part to its own blob.
		to := inboxPath(q)
		err := allowRename(name, to)
		if ok := k == kindPart && to+".part" == name; (err == nil) != ok {
			t.Fatalf("allowRename(%q, %q) = %v, want ok=%v", name, to, err, ok)
		}
		if err == nil && shape(to) != kindBlob {
			t.Fatalf("allowRename(%q, %q) renames to a %d", name, to, shape(to))
		}
	})
}

// TestShapeOfLayout: what the node layout names a blob in the inbox, and
// its upload in progress, are what the gate lets the master write.
func TestShapeOfLayout(t *testing.T) {
	d := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	blob := nodeapi.InboxBlobPath(d)
	if k := shape(nodeapi.InboxBlobDir); k != kindDir {
		t.Errorf("shape(%q) = %v, want the blob directory", nodeapi.InboxBlobDir, k)
	}
	if k := shape(blob); k != kindBlob {
		t.Errorf("shape(%q) = %v, want a blob", blob, k)
	}
	if k := shape(blob + nodeapi.PartSuffix); k != kindPart {
		t.Errorf("shape(%q) = %v, want a part", blob+nodeapi.PartSuffix, k)
	}
	if err := allowRename(blob+nodeapi.PartSuffix, blob); err != nil {
		t.Errorf("finishing an upload: %v", err)
	}
}
