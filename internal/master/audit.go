package master

import (
	"context"
	"fmt"
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
)

// The audit log (store/audit.go): httpapi appends every mutating request
// to it; the master appends what it does by itself (record).

// AppendAudit chains an entry.
func (m *Master) AppendAudit(ctx context.Context, e masterapi.AuditEntry) (masterapi.AuditEntry, error) {
	got, err := m.db.AppendAudit(ctx, store.AuditEntry{User: e.User, Credential: e.Credential, Action: e.Action,
		Target: e.Target, Detail: e.Detail, Result: e.Result, Intent: e.Intent})
	return auditOut(got), err
}

// AuditLog reads entries, oldest first.
func (m *Master) AuditLog(ctx context.Context, q masterapi.AuditQuery) ([]masterapi.AuditEntry, error) {
	since, err := masterapi.ParseSince(q.Since, time.Now())
	if err != nil {
		return nil, err
	}
	es, err := m.db.AuditLog(ctx, store.AuditQuery{Since: since, User: q.User, App: q.App, Limit: q.Limit})
	out := make([]masterapi.AuditEntry, 0, len(es))
	for _, e := range es {
		out = append(out, auditOut(e))
	}
	return out, err
}

// VerifyAudit checks the chain, the head record and recorded heads.
func (m *Master) VerifyAudit(ctx context.Context, recorded ...masterapi.AuditHead) (masterapi.AuditVerification, error) {
	var heads []store.AuditHead
	for _, h := range recorded {
		heads = append(heads, store.AuditHead{Seq: h.Seq, Hash: h.Hash})
	}
	v, err := m.db.VerifyAudit(ctx, heads...)
	return masterapi.AuditVerification{OK: v.OK(), Entries: v.Entries, Head: masterapi.AuditHead{Seq: v.Head.Seq, Hash: v.Head.Hash},
		Problem: v.Problem, At: v.At}, err
}

// record appends what the master did by itself, as user "master". Its
// callers record before they act, and do not act when it fails.
func (m *Master) record(ctx context.Context, action, target, detail string) error {
	_, err := m.db.AppendAudit(ctx, store.AuditEntry{User: "master", Credential: "the master itself", Action: action,
		Target: target, Detail: detail, Result: "ok"})
	if err != nil {
		return fmt.Errorf("%s %s: %w", action, target, err)
	}
	return nil
}

func auditOut(e store.AuditEntry) masterapi.AuditEntry {
	return masterapi.AuditEntry{Seq: e.Seq, Time: e.Time, User: e.User, Credential: e.Credential, Action: e.Action,
		Target: e.Target, Detail: e.Detail, Result: e.Result, Intent: e.Intent, Prev: e.Prev, Hash: e.Hash}
}
