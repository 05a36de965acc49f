package audit

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRunIntended: an edge's ports held by the daemon are reported as
// intended, as info; the same port held by another process, and any
// other port of the daemon, are judged as usual.
func TestRunIntended(t *testing.T) {
	p := newFakeProc(t)
	p.write(t, "net/tcp", string(table(tcpHeader, tcpSSH, tcpNginx)))
	p.process(t, "45", "sshd", "socket:[21345]")
	p.process(t, "123", "moat", "socket:[22002]")
	sshdT := func(context.Context) ([]byte, error) { return []byte("passwordauthentication no\n"), nil }

	got, err := runner{procRoot: p.root, sshdT: sshdT, intended: []Intended{{Pid: 123, Port: 80, What: "edge (intended)"}}}.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Report{
		Sockets: []Socket{
			{Proto: "tcp", Address: "0.0.0.0", Port: 22, Inode: 21345, Pid: 45, Process: "sshd"},
			{Proto: "tcp", Address: "10.1.2.3", Port: 80, Inode: 22002, Pid: 123, Process: "moat", Intended: "edge (intended)"},
		},
		SSHD:     map[string]string{"passwordauthentication": "no"},
		Findings: []Finding{{"info", "moat listens on 10.1.2.3:80/tcp: edge (intended)"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}

	for _, in := range []Intended{{Pid: 999, Port: 80, What: "edge (intended)"}, {Pid: 123, Port: 443, What: "edge (intended)"}} {
		got, err := runner{procRoot: p.root, sshdT: sshdT, intended: []Intended{in}}.run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Findings) != 1 || got.Findings[0] != (Finding{"high", "moat listens on 10.1.2.3:80/tcp"}) || got.Sockets[1].Intended != "" {
			t.Errorf("intended %+v: findings %+v, sockets %+v; want the socket unexpected", in, got.Findings, got.Sockets)
		}
	}
}
