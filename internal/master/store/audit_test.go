package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func appendN(t *testing.T, db *DB, n int) []AuditEntry {
	t.Helper()
	var out []AuditEntry
	for i := 0; i < n; i++ {
		e, err := db.AppendAudit(context.Background(), AuditEntry{User: "alice", Credential: "SHA256:k", Action: "scale", Target: "web", Detail: "replicas 3", Result: "started"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func verify(t *testing.T, db *DB, recorded ...AuditHead) AuditVerdict {
	t.Helper()
	v, err := db.VerifyAudit(context.Background(), recorded...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAuditAppendVerify(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	if v := verify(t, db); !v.OK() || v.Entries != 0 {
		t.Fatalf("empty log: %+v", v)
	}
	es := appendN(t, db, 5)
	if es[0].Seq != 1 || es[0].Prev != "" || es[1].Prev != es[0].Hash || es[4].Seq != 5 {
		t.Fatalf("entries not chained: %+v", es)
	}
	v := verify(t, db, AuditHead{Seq: 3, Hash: es[2].Hash})
	if !v.OK() || v.Entries != 5 || v.Head != (AuditHead{Seq: 5, Hash: es[4].Hash}) {
		t.Fatalf("verdict %+v", v)
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(path), AuditHeadFile))
	if err != nil || string(b) != "5 "+es[4].Hash+"\n" {
		t.Fatalf("head record %q, %v", b, err)
	}
	// A head an operator recorded that the log does not hold.
	if v := verify(t, db, AuditHead{Seq: 3, Hash: es[1].Hash}); v.OK() || !strings.Contains(v.Problem, "the recorded head") {
		t.Fatalf("a wrong recorded head passed: %+v", v)
	}
	// Reopening goes on from the same head.
	db.Close()
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, err := db.AppendAudit(ctx, AuditEntry{User: "master", Action: "failover", Result: "ok"})
	if err != nil || e.Seq != 6 || e.Prev != es[4].Hash {
		t.Fatalf("after reopen: %+v, %v", e, err)
	}
	if v := verify(t, db); !v.OK() {
		t.Fatalf("after reopen: %+v", v)
	}
}

func TestAuditQuery(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	for _, e := range []AuditEntry{
		{User: "alice", Action: "deploy", Target: "web"},
		{User: "bob", Action: "scale", Target: "api"},
		{User: "alice", Action: "node cordon", Target: "web"},
		{User: "master", Action: "failover", Target: "web"},
	} {
		if _, err := db.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(q AuditQuery) (out []int64) {
		es, err := db.AuditLog(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	for _, tt := range []struct {
		q    AuditQuery
		want string
	}{
		{AuditQuery{}, "[1 2 3 4]"},
		{AuditQuery{User: "alice"}, "[1 3]"},
		{AuditQuery{App: "web"}, "[1 4]"},
		{AuditQuery{Limit: 2}, "[3 4]"},
		{AuditQuery{Since: time.Now().Add(time.Hour)}, "[]"},
		{AuditQuery{Since: time.Now().Add(-time.Hour), User: "bob"}, "[2]"},
	} {
		if got := fmt.Sprint(seqs(tt.q)); got != tt.want {
			t.Errorf("%+v: %s, want %s", tt.q, got, tt.want)
		}
	}
}

// Tampering with the database directly, as someone with the file would.
func TestAuditTamper(t *testing.T) {
	for _, tt := range []struct {
		name, sql, problem string
	}{
		{"detail edited", `UPDATE audit_log SET detail = 'replicas 1' WHERE seq = 3`, "entry 3 ("},
		{"middle deleted", `DELETE FROM audit_log WHERE seq = 3`, "entry 3 was removed: 4 follows 2"},
		{"newest deleted", `DELETE FROM audit_log WHERE seq >= 4`, "the newest 2 entries were removed: the head record is 5, the log ends at 3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			appendN(t, db, 5)
			if _, err := db.db.Exec(tt.sql); err != nil {
				t.Fatal(err)
			}
			if v := verify(t, db); v.OK() || !strings.HasPrefix(v.Problem, tt.problem) {
				t.Fatalf("problem %q, want %q", v.Problem, tt.problem)
			}
		})
	}
}

// The newest entries removed while the master was down: it goes on from
// the head record, so the gap stays in the chain for verify to name.
func TestAuditContinuesFromHeadRecord(t *testing.T) {
	db, path := openTest(t)
	appendN(t, db, 5)
	db.db.Exec(`DELETE FROM audit_log WHERE seq >= 4`)
	db.Close()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if e := appendN(t, db, 1)[0]; e.Seq != 6 {
		t.Fatalf("appended %d, want 6", e.Seq)
	}
	if v := verify(t, db); v.OK() || v.Problem != "entries 4-5 were removed: 6 follows 3" {
		t.Fatalf("verdict %+v", v)
	}
}

// A head record removed while the master was down is noted in the chain.
func TestAuditHeadRecordLost(t *testing.T) {
	db, path := openTest(t)
	appendN(t, db, 2)
	headPath := filepath.Join(filepath.Dir(path), AuditHeadFile)
	os.Remove(headPath)
	if v := verify(t, db); v.OK() || !strings.Contains(v.Problem, "whether the newest entries were removed cannot be told") {
		t.Fatalf("no head record: %+v", v)
	}
	db.Close()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	es, _ := db.AuditLog(context.Background(), AuditQuery{})
	if len(es) != 3 || es[2].Action != "audit head lost" || es[2].User != "master" {
		t.Fatalf("log %+v", es)
	}
	if v := verify(t, db); !v.OK() {
		t.Fatalf("verdict %+v", v)
	}
}

// A database from before the chain: its rows are carried into the chain.
func TestAuditCarriesV1Rows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{schemaV1, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, '2026-01-01T00:00:00Z')`,
		`INSERT INTO audit (time, actor, action, detail) VALUES ('2026-01-01T00:00:01Z', 'root', 'deploy', 'web revision 1 image w:1'), ('2026-01-01T00:00:02Z', 'master', 'deployed', 'web revision 1')`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	es, err := db.AuditLog(context.Background(), AuditQuery{})
	if err != nil || len(es) != 2 || es[0].User != "root" || es[1].Action != "deployed" || es[0].Credential != "before the chain" ||
		!es[0].Time.Equal(time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)) {
		t.Fatalf("carried %+v, %v", es, err)
	}
	if v := verify(t, db); !v.OK() || v.Entries != 2 {
		t.Fatalf("verdict %+v", v)
	}
	var left int
	db.db.QueryRow(`SELECT COUNT(*) FROM audit_v1`).Scan(&left)
	if left != 0 {
		t.Fatalf("%d rows left in audit_v1", left)
	}
}
