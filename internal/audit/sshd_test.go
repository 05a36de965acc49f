package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSSHDT(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"debian 12 excerpt", `port 22
addressfamily any
listenaddress [::]:22
listenaddress 0.0.0.0:22
usepam yes
permitrootlogin without-password
passwordauthentication yes
kbdinteractiveauthentication no
pubkeyauthentication yes
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
x11forwarding yes
allowtcpforwarding yes
`, map[string]string{
			"port":                         "22",
			"addressfamily":                "any",
			"listenaddress":                "[::]:22 0.0.0.0:22",
			"usepam":                       "yes",
			"permitrootlogin":              "without-password",
			"passwordauthentication":       "yes",
			"kbdinteractiveauthentication": "no",
			"pubkeyauthentication":         "yes",
			"authorizedkeysfile":           ".ssh/authorized_keys .ssh/authorized_keys2",
			"x11forwarding":                "yes",
			"allowtcpforwarding":           "yes",
		}},
		{"several ports, blank lines, CRLF, tabs, odd case", "port 22\r\n\r\nport 2222\r\nPermitRootLogin\tno\n  banner   none  \nforcecommand\n",
			map[string]string{"port": "22 2222", "permitrootlogin": "no", "banner": "none", "forcecommand": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ParseSSHDT([]byte(tt.out))); diff != "" {
				t.Errorf("ParseSSHDT (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExecSSHDT runs a stand-in sshd found on PATH.
func TestExecSSHDT(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		want    string
		wantErr string
	}{
		{"settings", "echo 'port 22'", "port 22\n", ""},
		{"fails", "echo 'Missing privilege separation directory: /run/sshd' >&2; echo more >&2; exit 255",
			"", "exit status 255: Missing privilege separation directory: /run/sshd"},
		{"silent", "exit 0", "", "-T: no output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			script := "#!/bin/sh\n[ \"$1\" = -T ] || exit 3\n" + tt.script + "\n"
			mustDo(t, os.WriteFile(filepath.Join(dir, "sshd"), []byte(script), 0o755))
			t.Setenv("PATH", dir)
			out, err := execSSHDT(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("execSSHDT error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(out) != tt.want {
				t.Fatalf("execSSHDT = %q, %v; want %q", out, err, tt.want)
			}
		})
	}
}
