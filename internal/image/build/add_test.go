package build

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
)

func TestParseAdd(t *testing.T) {
	good := []struct {
		in   string
		want File
	}{
		{"app:/app", File{Src: "app", Dst: "/app"}},
		{"./bin/app:/usr/local/bin/app:0755", File{Src: "./bin/app", Dst: "/usr/local/bin/app", Mode: 0o755}},
		{"app:/app:755", File{Src: "app", Dst: "/app", Mode: 0o755}},
		{"conf.toml:/etc/app/conf.toml:0640", File{Src: "conf.toml", Dst: "/etc/app/conf.toml", Mode: 0o640}},
		{"/etc/ssl/certs:/etc/ssl/certs", File{Src: "/etc/ssl/certs", Dst: "/etc/ssl/certs"}},
		{"rootfs:/", File{Src: "rootfs", Dst: "/"}},
	}
	for _, tt := range good {
		got, err := ParseAdd(tt.in)
		if err != nil {
			t.Errorf("ParseAdd(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseAdd(%q) (-want +got):\n%s", tt.in, diff)
		}
	}

	bad := []struct {
		in, want string
	}{
		{"a", `--add "a": want SRC:DST[:MODE]`},
		{"", "want SRC:DST[:MODE]"},
		{":/app", "want SRC:DST[:MODE]"},
		{"app:", "want SRC:DST[:MODE]"},
		{"a:/b:0755:x", "want SRC:DST[:MODE]"},
		{"app:app", "want an absolute path"},
		{"app:/usr/../app", `".." is not allowed`},
		{"app:/usr//app", `not clean, want "/usr/app"`},
		{"app:/usr/bin/", `not clean, want "/usr/bin"`},
		{"app:/app:rwx", "want octal permission bits"},
		{"app:/app:0789", "want octal permission bits"},
		{"app:/app:4755", "no setuid, setgid or sticky"},
		{"app:/app:0", "between 0001 and 0777"},
	}
	for _, tt := range bad {
		_, err := ParseAdd(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseAdd(%q) = %v, want error containing %q", tt.in, err, tt.want)
		}
		if err != nil && !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("ParseAdd(%q) = %v, want errs.ErrInvalid", tt.in, err)
		}
	}
}
