package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
)

func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "master.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestMigrations(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	built := slices.Index(migrations, reserved)
	if built < 0 {
		built = len(migrations)
	}
	v, err := db.Version(ctx)
	if err != nil || v != built {
		t.Fatalf("version %d, %v; want %d", v, err, built)
	}
	db.Close()
	// Reopening applies nothing twice.
	db2, err := Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if v, _ := db2.Version(ctx); v != built {
		t.Errorf("version after reopen %d", v)
	}
	// A database from a newer moat is refused, not damaged.
	db2.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, len(migrations)+1, now())
	db2.Close()
	if _, err := Open(path); err == nil {
		t.Error("opened a database with a newer schema")
	}
}

func TestRevisions(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	r1, err := db.NewRevision(ctx, Revision{App: "web", Spec: []byte(`{"name":"web"}`), Image: "sha256:a", Template: "t1", Cause: "deploy"})
	if err != nil || r1.Revision != 1 || r1.Status != StatusProgressing {
		t.Fatalf("first revision: %+v %v", r1, err)
	}
	if err := db.SetStatus(ctx, "web", 1, StatusDeployed, ""); err != nil {
		t.Fatal(err)
	}
	r2, _ := db.NewRevision(ctx, Revision{App: "web", Spec: []byte(`{}`), Image: "sha256:b", Template: "t2", Cause: "deploy"})
	r3, _ := db.NewRevision(ctx, Revision{App: "web", Spec: []byte(`{}`), Image: "sha256:c", Template: "t3", Cause: "deploy"})
	if r2.Revision != 2 || r3.Revision != 3 {
		t.Fatalf("revision numbers %d %d", r2.Revision, r3.Revision)
	}
	app, _ := db.GetApp(ctx, "web")
	if app.Revision != 3 || app.Stable != 1 {
		t.Errorf("app %+v: want target 3, stable 1", app)
	}
	got, _ := db.GetRevision(ctx, "web", 2)
	if got.Status != StatusSuperseded {
		t.Errorf("revision 2 overtaken while progressing: status %s", got.Status)
	}
	revs, _ := db.Revisions(ctx, "web")
	if len(revs) != 3 || string(revs[0].Spec) != `{"name":"web"}` {
		t.Errorf("revisions %+v", revs)
	}
	if _, err := db.GetRevision(ctx, "web", 9); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("missing revision: %v", err)
	}
}

func TestReplicasAndDeleteApp(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	db.NewRevision(ctx, Revision{App: "web", Spec: []byte(`{}`), Image: "x", Template: "t", Cause: "deploy"})
	for _, id := range []string{"web-a", "web-b"} {
		if err := db.AddReplica(ctx, Replica{ID: id, App: "web", Revision: 1, Template: "t", Node: "n1", Desired: Run, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddReplica(ctx, Replica{ID: "web-a", App: "web", Node: "n2", Desired: Run}); err == nil {
		t.Error("a duplicate replica ID was accepted")
	}
	db.StopReplica(ctx, "web-b", "scaled down")
	if err := db.DeleteApp(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	reps, _ := db.Replicas(ctx)
	for _, r := range reps {
		if r.Desired != Stop {
			t.Errorf("replica %s of a removed app is %s", r.ID, r.Desired)
		}
	}
	if revs, _ := db.Revisions(ctx, "web"); len(revs) != 0 {
		t.Errorf("revisions of a removed app: %v", revs)
	}
	db.DeleteReplica(ctx, "web-a")
	if reps, _ := db.Replicas(ctx); len(reps) != 1 {
		t.Errorf("after delete: %v", reps)
	}
}

func TestNodes(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	n := Node{Name: "n1", Addr: "10.0.0.1:22", User: "root", HostKey: "ssh-ed25519 AAAA", Labels: map[string]string{"zone": "a"}, Enrolled: time.Now()}
	if err := db.PutNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := db.SetCordon(ctx, "n1", true, true); err != nil {
		t.Fatal(err)
	}
	n.Addr = "10.0.0.2:22"
	db.PutNode(ctx, n) // re-enrolment keeps the cordon
	got, err := db.GetNode(ctx, "n1")
	if err != nil || got.Addr != "10.0.0.2:22" || !got.Cordoned || !got.Draining || got.Labels["zone"] != "a" {
		t.Fatalf("node %+v %v", got, err)
	}
	db.AddReplica(ctx, Replica{ID: "r1", App: "a", Node: "n1", Desired: Run})
	if err := db.DeleteNode(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if reps, _ := db.Replicas(ctx); len(reps) != 0 {
		t.Errorf("replicas of a deleted node remain: %v", reps)
	}
	if err := db.SetCordon(ctx, "n1", false, false); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("cordon a deleted node: %v", err)
	}
	db.AppendAudit(ctx, AuditEntry{User: "root", Action: "node rm", Target: "n1"})
	if log, _ := db.AuditLog(ctx, AuditQuery{Limit: 10}); len(log) != 1 || log[0].Action != "node rm" {
		t.Errorf("audit log %v", log)
	}
}

// Nodes is cached; every write to nodes must show in the next answer.
func TestNodesCacheFollowsWrites(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	list := func() []Node {
		t.Helper()
		ns, err := db.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	if ns := list(); len(ns) != 0 {
		t.Fatalf("empty store lists %v", ns)
	}
	db.PutNode(ctx, Node{Name: "n1", Addr: "10.0.0.1:22", User: "root", HostKey: "k"})
	if ns := list(); len(ns) != 1 || ns[0].Addr != "10.0.0.1:22" {
		t.Fatalf("after put: %+v", ns)
	}
	db.PutNode(ctx, Node{Name: "n1", Addr: "10.0.0.9:22", User: "root", HostKey: "k"})
	if ns := list(); ns[0].Addr != "10.0.0.9:22" {
		t.Errorf("after re-put: %+v", ns[0])
	}
	db.SetCordon(ctx, "n1", true, false)
	if ns := list(); !ns[0].Cordoned {
		t.Errorf("after cordon: %+v", ns[0])
	}
	db.SetNodeInfo(ctx, "n1", NodeInfo{CPUs: 4})
	if ns := list(); ns[0].Info.CPUs != 4 {
		t.Errorf("after info: %+v", ns[0].Info)
	}
	db.DeleteNode(ctx, "n1")
	if ns := list(); len(ns) != 0 {
		t.Errorf("after delete: %+v", ns)
	}
}

// TestReplicasKeptMatchTheDatabase: after every kind of write, the
// replicas kept in memory are what a fresh read of the database gives.
func TestReplicasKeptMatchTheDatabase(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	if _, err := db.NewRevision(ctx, Revision{App: "web", Spec: []byte(`{}`), Image: "sha256:x", Template: "t1", Cause: "deploy"}); err != nil {
		t.Fatal(err)
	}
	db.PutNode(ctx, Node{Name: "n1", Addr: "a:22", HostKey: "k"})
	db.PutNode(ctx, Node{Name: "n2", Addr: "b:22", HostKey: "k"})
	if _, err := db.Replicas(ctx); err != nil { // start keeping them
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var batch []Replica
	for i := range 5 {
		batch = append(batch, Replica{ID: "web-" + string(rune('e'-i)), App: "web", Revision: 1, Template: "t1", Node: []string{"n1", "n2"}[i%2],
			Desired: Run, Created: t0.Add(time.Duration(i%3) * time.Second)})
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"add a batch", func() error { return db.AddReplicas(ctx, batch) }},
		{"add one", func() error {
			return db.AddReplica(ctx, Replica{ID: "other-a", App: "other", Revision: 1, Node: "n1", Desired: Run, Created: t0})
		}},
		{"stop", func() error { return db.StopReplica(ctx, "web-e", "scaled") }},
		{"note", func() error { return db.NoteReplica(ctx, "web-d", "moving for spread") }},
		{"note a stopped one", func() error { return db.NoteReplica(ctx, "web-e", "ignored") }},
		{"delete", func() error { return db.DeleteReplica(ctx, "web-c") }},
		{"delete an app", func() error { return db.DeleteApp(ctx, "web") }},
		{"delete a node", func() error { return db.DeleteNode(ctx, "n1") }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		kept, err := db.Replicas(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		read, err := fresh.Replicas(ctx)
		fresh.Close()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(read, kept); diff != "" {
			t.Errorf("after %s, kept replicas differ from the database (-db +kept):\n%s", s.name, diff)
		}
	}
}

// TestNodeColumns: the operator and info columns are the store's format.
// A row as earlier masters wrote it reads back whole, and what is written
// now is that same JSON, so a master and its database never disagree
// about a node across an upgrade or a downgrade.
func TestNodeColumns(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	operator := `{"dest":"root@203.0.113.7","port":2222,"identity":"/root/.ssh/ops","jump":"admin@bastion","sshConfig":"/etc/ssh_config"}`
	info := `{"version":"v1","hostname":"h","os":"Debian 12","kernel":"6.1","arch":"amd64","runc":"runc 1.1","cgroupMode":"v2",` +
		`"cpus":4,"memoryBytes":8,"diskBytes":100,"diskUsedBytes":40,"diskFreeBytes":50,"root":"/var/lib/moat","containers":3,` +
		`"running":2,"requireSigned":true,"signers":["alice SHA256:x"],"imageBytes":7,"peerFetch":true}`
	if _, err := db.db.ExecContext(ctx, `INSERT INTO nodes (name, addr, user, host_key, labels, operator, info, enrolled)
		VALUES ('n1', 'a:22', 'root', 'k', '{}', ?, ?, '2026-01-01T00:00:00Z')`, operator, info); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetNode(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	want := Node{Name: "n1", Addr: "a:22", User: "root", HostKey: "k", Labels: map[string]string{}, Tenant: DefaultTenant,
		Enrolled: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Operator: Access{Dest: "root@203.0.113.7", Port: 2222, Identity: "/root/.ssh/ops", Jump: "admin@bastion", SSHConfig: "/etc/ssh_config"},
		Info: NodeInfo{Version: "v1", Hostname: "h", OS: "Debian 12", Kernel: "6.1", Arch: "amd64", Runc: "runc 1.1", CgroupMode: "v2",
			CPUs: 4, MemoryBytes: 8, DiskBytes: 100, DiskUsedBytes: 40, DiskFreeBytes: 50, Root: "/var/lib/moat", Containers: 3,
			Running: 2, RequireSigned: true, Signers: []string{"alice SHA256:x"}, ImageBytes: 7, PeerFetch: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("a row as earlier masters wrote it (-want +got):\n%s", diff)
	}
	if err := db.PutNode(ctx, got); err != nil {
		t.Fatal(err)
	}
	var op, in string
	db.db.QueryRowContext(ctx, `SELECT operator, info FROM nodes WHERE name = 'n1'`).Scan(&op, &in)
	if op != operator || in != info {
		t.Errorf("written back differently:\n%s\n%s", op, in)
	}
}
