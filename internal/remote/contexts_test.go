package remote

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
)

func TestParse(t *testing.T) {
	good := "# mine\n\ncontext prod admin@203.0.113.7:2222 tenant=web\ncontext lab lab-master\nuse prod\n"
	cs, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := Contexts{Current: "prod", List: []Context{{"prod", "admin@203.0.113.7:2222", "web"}, {"lab", "lab-master", ""}}}
	if d := cmp.Diff(want, cs); d != "" {
		t.Fatalf("parse (-want +got):\n%s", d)
	}
	if back, err := Parse(cs.Format()); err != nil || cmp.Diff(cs, back) != "" {
		t.Fatalf("format does not parse back: %v %+v", err, back)
	}
	tests := []struct{ name, in, err string }{
		{"unknown keyword", "context a x@h\ncurrent a\n", `line 2: "current"`},
		{"missing destination", "context a\n", "line 1: want: context NAME"},
		{"extra field", "context a x@h tenant=t more\n", "line 1: want: context NAME"},
		{"bad tenant field", "context a x@h tenants=t\n", `line 1: "tenants=t": want tenant=T`},
		{"bad tenant", "context a x@h tenant=Web\n", `line 1: tenant: "Web"`},
		{"upper-case name", "context Prod x@h\n", `line 1: name: "Prod"`},
		{"reserved name", "context local x@h\n", "reserved"},
		{"option as destination", "context a -oProxyCommand=sh\n", "line 1:"},
		{"bad port", "context a x@h:0\n", "line 1:"},
		{"duplicate", "context a x@h\ncontext a y@h\n", `line 2: context "a" is defined twice`},
		{"second use", "context a x@h\nuse a\nuse a\n", "line 3: a second use (the first is on line 2)"},
		{"use of nothing", "context a x@h\n\nuse b\n", `line 3: use "b": no such context`},
		{"use without name", "use\n", "line 1: want: use NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("Parse(%q) = %v, want an invalid error with %q", tt.in, err, tt.err)
			}
		})
	}
}

// TestSaveLoad: the file is written whole, 0600, and read back; a broken
// file names itself and its line.
func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "moat", "contexts")
	if cs, err := Load(path); err != nil || len(cs.List) != 0 {
		t.Fatalf("missing file: %v %+v", err, cs)
	}
	cs := Contexts{Current: "a", List: []Context{{Name: "a", Dest: "root@h:2222", Tenant: "t"}}}
	if err := Save(path, cs); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi.Mode(), err)
	}
	back, err := Load(path)
	if err != nil || cmp.Diff(cs, back) != "" {
		t.Fatalf("load: %v %+v", err, back)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".contexts-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	os.WriteFile(path, []byte("context a root@h\nuse b\n"), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("broken file: %v", err)
	}
}

// FuzzParse: whatever the contexts file holds, Parse returns an error or
// contexts whose every destination is safe to give ssh, and which format
// and parse back the same.
func FuzzParse(f *testing.F) {
	f.Add("context prod admin@203.0.113.7:2222 tenant=web\nuse prod\n")
	f.Add("context a [::1]:22\n# c\n")
	f.Add("context a -oProxyCommand=x\n")
	f.Fuzz(func(t *testing.T, in string) {
		cs, err := Parse([]byte(in))
		if err != nil {
			return
		}
		for _, c := range cs.List {
			a, err := c.Access()
			if err != nil || strings.HasPrefix(a.Dest, "-") {
				t.Fatalf("accepted %q: %v", c.Dest, err)
			}
		}
		back, err := Parse(cs.Format())
		if err != nil || cmp.Diff(cs, back) != "" {
			t.Fatalf("round trip: %v\n%s", err, cmp.Diff(cs, back))
		}
	})
}
