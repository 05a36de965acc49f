package audit

import (
	"context"
	"errors"
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
