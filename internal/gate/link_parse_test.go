package gate

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

func TestParseLink(t *testing.T) {
	mux := Request{Role: RoleLink, Verb: VerbMux, App: "db", Port: 5432}
	tests := []struct {
		role, to, command string
		want              Request
		err               error
	}{
		{"link", "db:5432", "mux", mux, nil},
		{"link", "db.v2_x-1:1", "mux", Request{Role: RoleLink, Verb: VerbMux, App: "db.v2_x-1", Port: 1}, nil},
		{"link", "db:65535", "mux", Request{Role: RoleLink, Verb: VerbMux, App: "db", Port: 65535}, nil},
		// Every other verb, and anything else, is refused.
		{"link", "db:5432", "rpc", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "sftp", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "/usr/lib/openssh/sftp-server", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "internal-sftp", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "dial db:5432", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "dial db-1:22", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "blob sha256:" + strings.Repeat("ab", 32), Request{}, errs.ErrForbidden},
		{"link", "db:5432", "", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "  ", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "sh", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "mux; id", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "mux db-1", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "mux ", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "MUX", Request{}, errs.ErrForbidden},
		{"link", "db:5432", "scp -t /tmp", Request{}, errs.ErrForbidden},
		// --to is required, and must be TARGET:PORT.
		{"link", "", "mux", Request{}, errs.ErrInvalid},
		{"link", "db", "mux", Request{}, errs.ErrInvalid},
		{"link", "db:", "mux", Request{}, errs.ErrInvalid},
		{"link", ":5432", "mux", Request{}, errs.ErrInvalid},
		{"link", "db:0", "mux", Request{}, errs.ErrInvalid},
		{"link", "db:65536", "mux", Request{}, errs.ErrInvalid},
		{"link", "db:-1", "mux", Request{}, errs.ErrInvalid},
		{"link", "db:+80", "mux", Request{}, errs.ErrInvalid},
		{"link", "db:080", "mux", Request{}, errs.ErrInvalid},
		{"link", "db:80:81", "mux", Request{}, errs.ErrInvalid},
		{"link", "Db:80", "mux", Request{}, errs.ErrInvalid},
		{"link", "../db:80", "mux", Request{}, errs.ErrInvalid},
		{"link", "db,x:80", "mux", Request{}, errs.ErrInvalid},
		{"link", "db :80", "mux", Request{}, errs.ErrInvalid},
		// --to belongs to the link role only.
		{"master", "db:5432", "rpc", Request{}, errs.ErrInvalid},
		{"master", "db:5432", "dial db-1:5432", Request{}, errs.ErrInvalid},
		{"peer", "db:5432", "blob sha256:" + strings.Repeat("ab", 32), Request{}, errs.ErrInvalid},
		{"master", "", "mux", Request{}, errs.ErrForbidden},
	}
	for _, tt := range tests {
		got, err := Parse(tt.role, tt.to, tt.command)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Parse(%q, %q, %q) = %+v, %v; want error %v", tt.role, tt.to, tt.command, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q, %q, %q) = %+v, %v; want %+v", tt.role, tt.to, tt.command, got, err, tt.want)
		}
	}
}

// TestLinkRefusalSaysWhatTheKeyMayRun: the one line an SSH client sees
// names the only command.
func TestLinkRefusalSaysWhatTheKeyMayRun(t *testing.T) {
	for _, command := range []string{"", "id", "rpc", "dial db-1:5432"} {
		_, err := Parse(RoleLink, "db:5432", command)
		if err == nil || !strings.Contains(err.Error(), "mux") {
			t.Errorf("Parse(link, %q): %v; want a refusal naming mux", command, err)
		}
	}
}

// FuzzParseLink: whatever the command and --to, a link key gets mux on a
// valid app and port, or nothing.
func FuzzParseLink(f *testing.F) {
	for _, s := range [][2]string{{"db:5432", "mux"}, {"db:5432", "rpc"}, {"", "mux"}, {"db:0", "mux"}, {"db:5432", "dial db:5432"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, to, command string) {
		req, err := Parse(RoleLink, to, command)
		if err != nil {
			return
		}
		if req.Verb != VerbMux || command != "mux" || req.Port < 1 || req.Port > 65535 || req.App == "" || to != req.App+":"+strconv.Itoa(req.Port) {
			t.Fatalf("Parse(link, %q, %q) = %+v", to, command, req)
		}
	})
}
