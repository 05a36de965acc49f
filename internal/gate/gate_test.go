package gate

import (
	"errors"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

func TestParse(t *testing.T) {
	tests := []struct {
		role, command string
		want          Request
		err           error
	}{
		{"master", "rpc", Request{Verb: VerbRPC}, nil},
		{"master", "sftp", Request{Verb: VerbSFTP}, nil},
		{"master", "/usr/lib/openssh/sftp-server", Request{Verb: VerbSFTP}, nil},
		{"master", "/usr/lib/openssh/sftp-server -l INFO", Request{Verb: VerbSFTP}, nil},
		{"master", "internal-sftp", Request{Verb: VerbSFTP}, nil},
		{"master", "dial web:8080", Request{Verb: VerbDial, Container: "web", Port: 8080}, nil},
		{"master", "dial web.1:1", Request{Verb: VerbDial, Container: "web.1", Port: 1}, nil},
		{"master", "", Request{}, errs.ErrForbidden},
		{"master", "   ", Request{}, errs.ErrForbidden},
		{"master", "id", Request{}, errs.ErrForbidden},
		{"master", "bash", Request{}, errs.ErrForbidden},
		{"master", "rpc; id", Request{}, errs.ErrForbidden},
		{"master", "rpc extra", Request{}, errs.ErrForbidden},
		{"master", "RPC", Request{}, errs.ErrForbidden},
		{"master", "scp -t /tmp", Request{}, errs.ErrForbidden},
		{"master", "scp -f /etc/shadow", Request{}, errs.ErrForbidden},
		{"master", "/usr/lib/openssh/sftp-server; id", Request{}, errs.ErrForbidden},
		{"master", "/usr/bin/sftp-server /etc", Request{}, errs.ErrForbidden},
		{"master", "/bin/sh -c sftp-server", Request{}, errs.ErrForbidden},
		{"master", "dial web", Request{}, errs.ErrInvalid},
		{"master", "dial web:0", Request{}, errs.ErrInvalid},
		{"master", "dial web:65536", Request{}, errs.ErrInvalid},
		{"master", "dial ../x:80", Request{}, errs.ErrInvalid},
		{"master", "dial web:80 extra", Request{}, errs.ErrForbidden},
		{"master", "dial Web:80", Request{}, errs.ErrInvalid},
		{"peer", "blob sha256:abababababababababababababababababababababababababababababababab", Request{Verb: VerbBlob, Digest: "sha256:abababababababababababababababababababababababababababababababab", Size: -1}, nil},
		{"peer", "blob sha256:abababababababababababababababababababababababababababababababab 4096", Request{Verb: VerbBlob, Digest: "sha256:abababababababababababababababababababababababababababababababab", Offset: 4096, Size: -1}, nil},
		{"peer", "blob sha256:abababababababababababababababababababababababababababababababab 4096 8192", Request{Verb: VerbBlob, Digest: "sha256:abababababababababababababababababababababababababababababababab", Offset: 4096, Size: 8192}, nil},
		{"peer", "blob sha256:abababababababababababababababababababababababababababababababab 0 0", Request{Verb: VerbBlob, Digest: "sha256:abababababababababababababababababababababababababababababababab", Size: 0}, nil},
		{"peer", "blob sha256:abababababababababababababababababababababababababababababababab 8193 8192", Request{}, errs.ErrInvalid},
		{"peer", "blob sha256:abababababababababababababababababababababababababababababababab 1 +2", Request{}, errs.ErrInvalid},
		{"peer", "blob sha256:abababababababababababababababababababababababababababababababab 1 x", Request{}, errs.ErrInvalid},
		{"peer", "blob sha256:abababababababababababababababababababababababababababababababab 01", Request{}, errs.ErrInvalid},
		{"peer", "rpc", Request{}, errs.ErrForbidden},
		{"peer", "sftp", Request{}, errs.ErrForbidden},
		{"peer", "dial web:80", Request{}, errs.ErrForbidden},
		{"peer", "", Request{}, errs.ErrForbidden},
		{"peer", "blob sha256:../../etc/shadow", Request{}, errs.ErrInvalid},
		{"peer", "blob sha256:ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB", Request{}, errs.ErrInvalid},
		{"peer", "blob sha512:abababababababababababababababababababababababababababababababab", Request{}, errs.ErrInvalid},
		{"peer", "blob sha256:abababababababababababababababababababababababababababababababab -1", Request{}, errs.ErrInvalid},
		{"peer", "blob sha256:abababababababababababababababababababababababababababababababab 1 2 3", Request{}, errs.ErrForbidden},
		{"master", "blob sha256:abababababababababababababababababababababababababababababababab", Request{}, errs.ErrForbidden},
		{"master", "mux", Request{}, errs.ErrForbidden},
		{"peer", "mux", Request{}, errs.ErrForbidden},
		{"nobody", "rpc", Request{}, errs.ErrForbidden},
		{"", "rpc", Request{}, errs.ErrForbidden},
	}
	for _, tt := range tests {
		got, err := Parse(tt.role, "", tt.command)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Parse(%q, %q) = %+v, %v; want error %v", tt.role, tt.command, got, err, tt.err)
			}
			continue
		}
		// The request carries the role that asked: the socket it goes to.
		tt.want.Role = tt.role
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q, %q) = %+v, %v; want %+v", tt.role, tt.command, got, err, tt.want)
		}
	}
}

func TestQuoteBoundsAttackerInput(t *testing.T) {
	long := make([]byte, 500)
	for i := range long {
		long[i] = 'a'
	}
	_, err := Parse("master", "", string(long)+"\x1b[2J")
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("refusal of a long command: %v", err)
	}
	_, err = Parse("master", "", "evil\x1b[2Jcommand")
	if err == nil || containsControl(err.Error()) {
		t.Fatalf("refusal echoes control characters: %q", err)
	}
}

func containsControl(s string) bool {
	for _, r := range s {
		if r < 0x20 {
			return true
		}
	}
	return false
}

// FuzzParse: any command either parses into an allowed verb or is refused;
// never a panic, never a dial without a valid target.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"rpc", "sftp", "dial web:80", "", "scp -t /", "/usr/lib/openssh/sftp-server -l INFO"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, command string) {
		req, err := Parse("master", "", command)
		if err != nil {
			return
		}
		switch req.Verb {
		case VerbRPC, VerbSFTP:
		case VerbDial:
			if req.Port < 1 || req.Port > 65535 || req.Container == "" {
				t.Fatalf("dial %q parsed to %+v", command, req)
			}
		default:
			t.Fatalf("command %q parsed to verb %q", command, req.Verb)
		}
	})
}

func FuzzParsePeer(f *testing.F) {
	for _, s := range []string{"blob sha256:" + strings.Repeat("0", 64), "blob sha256:" + strings.Repeat("f", 64) + " 10", "blob sha256:" + strings.Repeat("f", 64) + " 10 20", "rpc", "blob x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, command string) {
		req, err := Parse("peer", "", command)
		if err != nil {
			return
		}
		hex, ok := strings.CutPrefix(req.Digest, "sha256:")
		if req.Verb != VerbBlob || !ok || len(hex) != 64 || strings.ContainsAny(hex, "/.") || req.Offset < 0 || req.Size < -1 || (req.Size >= 0 && req.Offset > req.Size) {
			t.Fatalf("peer command %q parsed to %+v", command, req)
		}
	})
}
