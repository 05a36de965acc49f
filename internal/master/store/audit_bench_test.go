package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkAuditAppend: one entry (a request writes two: its intent and
// its outcome), through SQLite and the head record's write and rename.
func BenchmarkAuditAppend(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "m.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for b.Loop() {
		if _, err := db.AppendAudit(ctx, AuditEntry{User: "alice", Credential: "SHA256:k", Action: "scale", Target: "web",
			Detail: "replicas 3", Result: "started"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuditVerify: moat audit verify's walk over a log of 100,000
// entries.
func BenchmarkAuditVerify(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "m.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const n = 100000
	// Appended in one transaction, as the v1 rows are carried in: the
	// walk is what is measured.
	if _, err := db.db.ExecContext(ctx, `INSERT INTO audit_v1 (time, actor, action, detail)
		WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < ?)
		SELECT '2026-12-07T10:00:00Z', 'alice', 'scale', 'web replicas ' || i FROM c`, n); err != nil {
		b.Fatal(err)
	}
	if err := db.carryV1Audit(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		v, err := db.VerifyAudit(ctx)
		if err != nil || !v.OK() || v.Entries != n {
			b.Fatal(fmt.Sprint(v, err))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
}
