package enroll

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
)

func TestWithoutMaster(t *testing.T) {
	key, err := sshkey.GenerateKey(t.TempDir()+"/k", "x")
	if err != nil {
		t.Fatal(err)
	}
	mine := sshkey.AuthorizedKey(key.PublicKey())
	in := strings.Join([]string{
		"ssh-ed25519 AAAAoperator operator@laptop",
		`restrict,command="/usr/local/bin/moat gate --as master" ` + mine + " moat-master",
		`restrict,command="/usr/local/bin/moat gate --as master" ssh-ed25519 AAAAold moat-master`,
		"# a comment the operator wrote",
		"",
		"ssh-rsa AAAAother backup",
		`restrict,command="/usr/local/bin/moat gate --as peer" ssh-ed25519 AAAApeer moat-peer`,
	}, "\n")
	got := withoutMoat(in, key.PublicKey())
	want := []string{"ssh-ed25519 AAAAoperator operator@laptop", "# a comment the operator wrote", "ssh-rsa AAAAother backup"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("withoutMoat kept:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	line := masterKeyLine(key.PublicKey())
	if !strings.HasPrefix(line, `restrict,command="/usr/local/bin/moat gate --as master" ssh-ed25519 `) || !strings.HasSuffix(line, " moat-master") {
		t.Errorf("master key line %q", line)
	}
}

func TestCheckArch(t *testing.T) {
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true binary")
	}
	if err := checkArch(bin, "x86_64"); err != nil && strings.Contains(err.Error(), "read") {
		t.Fatal(err)
	}
	// This machine's binaries are not for both architectures at once.
	errA, errB := checkArch(bin, "x86_64"), checkArch(bin, "aarch64")
	if (errA == nil) == (errB == nil) {
		t.Errorf("checkArch: x86_64 %v, aarch64 %v; want exactly one to fail", errA, errB)
	}
	for _, err := range []error{errA, errB} {
		if err != nil && (!errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "GOARCH=")) {
			t.Errorf("mismatch error %q lacks the way out", err)
		}
	}
	if err := checkArch(bin, "mips"); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("unknown machine: %v", err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"a": "'a'", "a b": "'a b'", "it's": `'it'\''s'`, "": "''", "$(id)": "'$(id)'"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
		out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(in)).Output()
		if err != nil || string(out) != in {
			t.Errorf("sh sees %q for %q (%v)", out, in, err)
		}
	}
}

func TestSetting(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "require-signed=true\n"},
		{"cgroup-parent=moat-x\n", "cgroup-parent=moat-x\nrequire-signed=true\n"},
		{"require-signed=false\n# note\nroot=/srv/moat\n", "require-signed=true\n# note\nroot=/srv/moat\n"},
		{"require-signed = false\nrequire-signed=false", "require-signed=true\n"},
	} {
		if got := setting(tc.in, "require-signed", "true"); got != tc.want {
			t.Errorf("setting(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckSigning(t *testing.T) {
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFz9kCz1Gd2hgTDBxsk6pEIkbkeVF3aVn7IYO1f6VXBc"
	for _, tc := range []struct {
		opts Options
		want string // "" = fine
	}{
		{Options{RequireSigned: false}, ""},
		{Options{RequireSigned: true, AllowedSigners: []byte("ops " + key + "\n")}, ""},
		{Options{RequireSigned: true}, "--allowed-signers FILE"},
		{Options{RequireSigned: true, AllowedSigners: []byte("# nobody\n")}, "lists no signer"},
		{Options{RequireSigned: true, AllowedSigners: []byte("ops nonsense\n")}, "line 1"},
	} {
		err := checkSigning(tc.opts)
		if (tc.want == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tc.want) || !errors.Is(err, errs.ErrInvalid))) {
			t.Errorf("%+v: %v, want %q", tc.opts, err, tc.want)
		}
	}
}

// TestWithoutLinks: removing a node takes the link keys' lines away with
// moat's others, and only them.
func TestWithoutLinks(t *testing.T) {
	in := []string{
		"ssh-ed25519 AAAAoperator operator@laptop",
		nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, nodeapi.LinkGrant{ID: "web>db:5432", Target: "db", Port: 5432, Key: "ssh-ed25519 AAAAlink"}),
		"ssh-rsa AAAAother moat-link-is-not-a-marker",
		"",
	}
	want := []string{in[0], in[2], ""}
	got := withoutLinks(in)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("withoutLinks kept %q, want %q", got, want)
	}
}
