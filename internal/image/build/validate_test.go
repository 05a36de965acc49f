package build

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

func TestBuildInvalid(t *testing.T) {
	dir := t.TempDir()
	app := mkfile(t, dir, "app", "x", 0o755, created)
	conf := mkfile(t, dir, "conf", "c", 0o644, created)
	tree := mkfile(t, dir, "tree/a", "a", 0o644, created)
	suid := mkfile(t, dir, "suid", "s", os.ModeSetuid|0o755, created)
	sgid := mkfile(t, dir, "sgid/tool", "s", os.ModeSetgid|0o755, created)
	sock := filepath.Join(dir, "withsock", "s.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	base := func(files ...File) Options {
		return Options{Files: append([]File{{Src: app, Dst: "/app"}}, files...), Entrypoint: []string{"/app"}}
	}
	with := func(change func(*Options)) Options {
		o := base()
		change(&o)
		return o
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"nothing", Options{}, "nothing to build"},
		{"entrypoint missing", with(func(o *Options) { o.Entrypoint = []string{"/ap"} }), "entrypoint: /ap is not among the added files"},
		{"entrypoint without files", Options{Entrypoint: []string{"/app"}}, "/app is not among the added files"},
		{"entrypoint relative", with(func(o *Options) { o.Entrypoint = []string{"app"} }), "want an absolute path"},
		{"entrypoint directory", Options{Files: []File{{Src: app, Dst: "/bin/app"}}, Entrypoint: []string{"/bin"}}, "/bin is a directory"},
		{"entrypoint not executable", Options{Files: []File{{Src: conf, Dst: "/app"}}, Entrypoint: []string{"/app"}}, "not executable (mode 0644)"},
		{"cmd missing", Options{Files: []File{{Src: app, Dst: "/app"}}, Cmd: []string{"/bin/sh"}}, "cmd: /bin/sh is not among"},
		{"relative dst", base(File{Src: conf, Dst: "etc/conf"}), `destination "etc/conf": want an absolute path`},
		{"dotdot dst", base(File{Src: conf, Dst: "/etc/../conf"}), `".." is not allowed`},
		{"unclean dst", base(File{Src: conf, Dst: "/etc/"}), "not clean"},
		{"file as root", base(File{Src: conf, Dst: "/"}), "cannot be added as /"},
		{"duplicate dst", base(File{Src: conf, Dst: "/app"}), "/app: added twice"},
		{"duplicate from a directory", base(File{Src: filepath.Dir(tree), Dst: "/x"}, File{Src: conf, Dst: "/x/a"}), "/x/a: added twice (from " + filepath.Dir(tree)},
		{"below a file", base(File{Src: conf, Dst: "/app/conf"}), "/app (from " + app + ") is not a directory"},
		{"forced mode with setuid", base(File{Src: conf, Dst: "/conf", Mode: 0o4755}), "only permission bits"},
		{"missing source", base(File{Src: dir + "/nope", Dst: "/nope"}), "no such file"},
		{"setuid source", base(File{Src: suid, Dst: "/suid"}), suid + ": setuid/setgid files are refused"},
		{"setgid source in a directory", base(File{Src: filepath.Dir(sgid), Dst: "/opt"}), sgid + ": setuid/setgid"},
		{"socket in a directory", base(File{Src: filepath.Dir(sock), Dst: "/run"}), sock + ": is a socket"},
		{"bad env", with(func(o *Options) { o.Env = []string{"DEBUG"} }), `env: "DEBUG": want KEY=VALUE`},
		{"empty env key", with(func(o *Options) { o.Env = []string{"=1"} }), "want KEY=VALUE"},
		{"duplicate env", with(func(o *Options) { o.Env = []string{"A=1", "A=2"} }), `"A" set twice`},
		{"user name", with(func(o *Options) { o.User = "app" }), "user names are not supported"},
		{"unknown privilege", with(func(o *Options) { o.Privileges = []string{"everything"} }), `privilege: "everything" is not a privilege`},
		{"not a capability", with(func(o *Options) { o.Privileges = []string{"cap:FLY"} }), `"FLY" is not a Linux capability`},
		{"bad privileges label", with(func(o *Options) { o.Labels = map[string]string{"org.moatcloud.privileges": "root,all"} }), `label org.moatcloud.privileges: "all" is not a privilege`},
		{"user bad gid", with(func(o *Options) { o.User = "1000:" }), "numeric uid or uid:gid"},
		{"port", with(func(o *Options) { o.Ports = []string{"http"} }), "want PORT[/tcp|udp|sctp]"},
		{"port protocol", with(func(o *Options) { o.Ports = []string{"80/icmp"} }), "want PORT[/tcp|udp|sctp]"},
		{"workdir", with(func(o *Options) { o.WorkDir = "srv" }), "workdir"},
		{"name", with(func(o *Options) { o.Name = "demo 1" }), "white space"},
		{"owner", with(func(o *Options) { o.UID = -1 }), "non-negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Build(context.Background(), &out, tt.opts)
			if err == nil {
				t.Fatalf("Build succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build: %v, want an error containing %q", err, tt.want)
			}
			if tt.name != "missing source" && !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("Build: %v, want errs.ErrInvalid", err)
			}
			if out.Len() != 0 {
				t.Errorf("Build wrote %d bytes before failing", out.Len())
			}
		})
	}
}
