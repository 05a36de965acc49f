package audit

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRun(t *testing.T) {
	p := newFakeProc(t)
	p.write(t, "net/tcp", string(table(tcpHeader, tcpSSH, tcpNginx)))
	p.process(t, "45", "sshd", "socket:[21345]")
	p.process(t, "123", "nginx", "socket:[22002]")
	socks := []Socket{
		{Proto: "tcp", Address: "0.0.0.0", Port: 22, Inode: 21345, Pid: 45, Process: "sshd"},
		{Proto: "tcp", Address: "10.1.2.3", Port: 80, Inode: 22002, Pid: 123, Process: "nginx"},
	}
	nginx := Finding{"high", "nginx listens on 10.1.2.3:80/tcp"}

	tests := []struct {
		name  string
		sshdT func(context.Context) ([]byte, error)
		want  Report
	}{
		{"sshd settings read", func(context.Context) ([]byte, error) {
			return []byte("port 22\nusepam yes\npasswordauthentication no\npubkeyauthentication yes\n"), nil
		}, Report{
			Sockets:  socks,
			SSHD:     map[string]string{"port": "22", "passwordauthentication": "no", "pubkeyauthentication": "yes"},
			Findings: []Finding{nginx},
		}},
		{"sshd -T fails", func(context.Context) ([]byte, error) {
			return nil, errors.New("run /usr/sbin/sshd -T: exit status 255: Missing privilege separation directory: /run/sshd")
		}, Report{
			Sockets: socks,
			Findings: []Finding{nginx, {"warn", "could not read sshd settings: run /usr/sbin/sshd -T: exit status 255: " +
				"Missing privilege separation directory: /run/sshd"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runner{procRoot: p.root, sshdT: tt.sshdT}.run(context.Background())
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("run (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	p := newFakeProc(t)
	p.write(t, "net/tcp", tcpHeader)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		procRoot string
		ctx      context.Context
		wantErr  string
	}{
		{"no proc", p.root + "/nope", context.Background(), "audit: list listening sockets"},
		{"canceled", p.root, canceled, "audit: read sshd settings: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sshdT := func(ctx context.Context) ([]byte, error) { return nil, ctx.Err() }
			_, err := runner{procRoot: tt.procRoot, sshdT: sshdT}.run(tt.ctx)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestRunHardening: the report says whether moat's sshd drop-in is in
// force, and flags what a hardened sshd would not offer.
func TestRunHardening(t *testing.T) {
	p := newFakeProc(t)
	p.write(t, "net/tcp", string(table(tcpHeader, tcpSSH)))
	p.process(t, "45", "sshd", "socket:[21345]")
	dropIn := "# moat\nPasswordAuthentication no\nMACs hmac-sha2-512-etm@openssh.com\n"
	hardened := "passwordauthentication no\nmacs hmac-sha2-512-etm@openssh.com\nkexalgorithms curve25519-sha256\nallowagentforwarding no\n"
	stock := "passwordauthentication yes\nmacs umac-64-etm@openssh.com,hmac-sha1\nkexalgorithms curve25519-sha256,ecdh-sha2-nistp256\nallowagentforwarding yes\n"
	tests := []struct {
		name      string
		sshdT     string
		dropIn    string
		dropInErr error
		state     string
		findings  []Finding
	}{
		{"in force", hardened, dropIn, nil, "in force", []Finding{}},
		{"not installed, stock settings", stock, "", fs.ErrNotExist, "not installed", []Finding{
			{"high", "sshd allows password authentication (passwordauthentication yes)"},
			{"high", "sshd offers broken macs (SHA-1, MD5, CBC, 3DES, RC4 or DSA): hmac-sha1"},
			{"warn", "moat's sshd hardening is not installed (/etc/ssh/sshd_config.d/00-moat.conf): moat node add installs it"},
			{"warn", "sshd allows agent forwarding (allowagentforwarding yes): a login to this node can use the forwarding user's keys"},
			{"warn", "sshd offers weak kexalgorithms (NIST curves, small groups, non-ETM or short MACs): ecdh-sha2-nistp256"},
			{"warn", "sshd offers weak macs (NIST curves, small groups, non-ETM or short MACs): umac-64-etm@openssh.com"},
		}},
		{"installed but not in force", "passwordauthentication yes\nmacs hmac-sha2-512-etm@openssh.com\n", dropIn, nil,
			"not in force: passwordauthentication: in force yes, the drop-in says no", []Finding{
				{"high", "sshd allows password authentication (passwordauthentication yes)"},
				{"warn", "moat's sshd hardening is not in force: passwordauthentication: in force yes, the drop-in says no (does sshd_config include /etc/ssh/sshd_config.d first?)"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runner{procRoot: p.root,
				sshdT:  func(context.Context) ([]byte, error) { return []byte(tt.sshdT), nil },
				dropIn: func() (string, error) { return tt.dropIn, tt.dropInErr }}
			got, err := r.run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got.Hardening != tt.state {
				t.Errorf("hardening %q, want %q", got.Hardening, tt.state)
			}
			if diff := cmp.Diff(tt.findings, got.Findings); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOneTimeHostKey: a node still serving the host key from its user
// data is told; one whose key was replaced (no marker) is not.
func TestOneTimeHostKey(t *testing.T) {
	p := newFakeProc(t)
	p.write(t, "net/tcp", tcpHeader)
	sshdT := func(context.Context) ([]byte, error) { return []byte("port 22\n"), nil }
	for _, tt := range []struct {
		name   string
		marker string
		err    error
		want   string // in a warn finding; "" none
	}{
		{"rotated", "", fs.ErrNotExist, ""},
		{"one-time", "SHA256:abc\n", nil, "sshd still serves the one-time host key SHA256:abc from the server's user data"},
		{"unreadable", "", fs.ErrPermission, "could not read /etc/moat/hostkey.onetime"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runner{procRoot: p.root, sshdT: sshdT, oneTime: func() (string, error) { return tt.marker, tt.err }}
			rep, err := r.run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var found []string
			for _, f := range rep.Findings {
				if f.Severity == "warn" && strings.Contains(f.What, "hostkey.onetime") {
					found = append(found, f.What)
				}
			}
			if (tt.want == "" && len(found) != 0) || (tt.want != "" && (len(found) != 1 || !strings.Contains(found[0], tt.want))) {
				t.Errorf("findings %q; want one containing %q", found, tt.want)
			}
		})
	}
}
