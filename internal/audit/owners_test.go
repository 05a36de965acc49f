package audit

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeProc lays out a directory like /proc: per process a comm file
// (unless comm is "-") and fd symlinks to the given targets.
type fakeProc struct{ root string }

func newFakeProc(t *testing.T) fakeProc {
	t.Helper()
	return fakeProc{root: t.TempDir()}
}

func (p fakeProc) process(t *testing.T, pid, comm string, links ...string) {
	t.Helper()
	fd := filepath.Join(p.root, pid, "fd")
	mustDo(t, os.MkdirAll(fd, 0o755))
	if comm != "-" {
		p.write(t, filepath.Join(pid, "comm"), comm+"\n")
	}
	for i, target := range links {
		mustDo(t, os.Symlink(target, filepath.Join(fd, string(rune('0'+i)))))
	}
}

func (p fakeProc) write(t *testing.T, name, content string) {
	t.Helper()
	path := filepath.Join(p.root, name)
	mustDo(t, os.MkdirAll(filepath.Dir(path), 0o755))
	mustDo(t, os.WriteFile(path, []byte(content), 0o644))
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOwners(t *testing.T) {
	p := newFakeProc(t)
	p.process(t, "123", "nginx", "socket:[4567]", "/var/log/nginx/access.log", "pipe:[99]", "socket:[4568]")
	p.process(t, "45", "sshd", "socket:[21345]", "/dev/null")
	p.process(t, "1000", "nginx", "socket:[4567]", "socket:[9999]") // a worker sharing 4567
	p.process(t, "77", "-", "socket:[7777]")                        // comm unreadable: skipped
	p.process(t, "88", "anon", "socket:[]", "socket:[x]", "socket:[8888")
	p.write(t, "123/fd/9", "a regular file, not a link")
	p.write(t, "self/fd/0", "")
	p.write(t, "net/tcp", tcpHeader)
	mustDo(t, os.MkdirAll(filepath.Join(p.root, "99"), 0o755)) // no fd dir: skipped

	got, err := Owners(p.root)
	if err != nil {
		t.Fatalf("Owners: %v", err)
	}
	want := map[uint64]Owner{
		4567:  {Pid: 123, Comm: "nginx"},
		4568:  {Pid: 123, Comm: "nginx"},
		9999:  {Pid: 1000, Comm: "nginx"},
		21345: {Pid: 45, Comm: "sshd"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Owners (-want +got):\n%s", diff)
	}
}

func TestOwnersMissingRoot(t *testing.T) {
	_, err := Owners(filepath.Join(t.TempDir(), "nope"))
	if err == nil || !strings.Contains(err.Error(), "scan socket owners") {
		t.Fatalf("Owners(missing) error = %v, want one naming the scan", err)
	}
}

func TestListeningFakeProc(t *testing.T) {
	p := newFakeProc(t)
	p.write(t, "net/tcp", string(table(tcpHeader, tcpNginx, tcpSSH, tcpCups, tcpEstab)))
	p.write(t, "net/udp", string(table(udpHeader, udpDHCP)))
	p.process(t, "45", "sshd", "socket:[21345]")
	p.process(t, "123", "nginx", "socket:[22002]")
	p.process(t, "600", "dhclient", "socket:[18234]")

	got, err := Listening(p.root)
	if err != nil {
		t.Fatalf("Listening: %v", err)
	}
	want := []Socket{
		{Proto: "tcp", Address: "0.0.0.0", Port: 22, Inode: 21345, Pid: 45, Process: "sshd"},
		{Proto: "tcp", Address: "10.1.2.3", Port: 80, Inode: 22002, Pid: 123, Process: "nginx"},
		{Proto: "tcp", Address: "127.0.0.1", Port: 631, Inode: 22001, Loopback: true},
		{Proto: "udp", Address: "0.0.0.0", Port: 68, Inode: 18234, Pid: 600, Process: "dhclient"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Listening (-want +got):\n%s", diff)
	}
}

func TestListeningErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{"malformed table", map[string]string{"net/udp6": "sl\n 0: 1 2 3\n"}, "/proc/net/udp6 line 2"},
		{"table is a directory", map[string]string{"net/tcp/x": ""}, "list listening sockets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProc(t)
			for name, content := range tt.files {
				p.write(t, name, content)
			}
			_, err := Listening(p.root)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Listening error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestListeningRealProc reads this machine's own tables. Whether sshd or
// anything else listens here varies, so it checks the shape of every socket
// and that a loopback listener of its own shows up with this process as
// owner.
func TestListeningRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	mine := Socket{Proto: "tcp", Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Pid: os.Getpid(), Loopback: true}

	socks, err := Listening("/proc")
	if err != nil {
		t.Fatalf("Listening(/proc): %v", err)
	}
	found := false
	for _, s := range socks {
		if s.Proto == "" || s.Port == 0 || s.Address == "" {
			t.Errorf("socket without proto, port or address: %+v", s)
		}
		if s.Proto == mine.Proto && s.Port == mine.Port && s.Address == mine.Address {
			found = true
			if diff := cmp.Diff(mine, s, cmpopts.IgnoreFields(Socket{}, "Inode", "Process")); diff != "" {
				t.Errorf("own listener (-want +got):\n%s", diff)
			}
		}
	}
	if !found {
		t.Errorf("own listener %+v not in %+v", mine, socks)
	}
}
