package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// auditChainV2 makes the hash-chained audit log. The plain rows of v1's
// audit table are moved aside into audit_v1 by the migration, and carried
// into the chain, in order, by the first Open that finds them (SQL cannot
// hash): from then on they are chained like any entry, with credential
// "before the chain" since v1 did not record one.
const auditChainV2 = `ALTER TABLE audit RENAME TO audit_v1;
	CREATE TABLE audit_log (
		seq        INTEGER PRIMARY KEY,
		time       TEXT NOT NULL,
		user       TEXT NOT NULL,
		credential TEXT NOT NULL,
		action     TEXT NOT NULL,
		target     TEXT NOT NULL,
		detail     TEXT NOT NULL,
		result     TEXT NOT NULL,
		intent     INTEGER NOT NULL,
		prev       TEXT NOT NULL,
		hash       TEXT NOT NULL
	);
	CREATE INDEX audit_log_by_time ON audit_log(time);
	CREATE INDEX audit_log_by_user ON audit_log(user, seq);
	CREATE INDEX audit_log_by_target ON audit_log(target, seq);`

// AuditHeadFile is the head record, beside the database: the newest
// entry's sequence number and hash, replaced (written aside, renamed)
// after every append. It is how removing the newest entries from the
// database shows: the chain alone cannot tell a log cut short from one
// that ends there.
const AuditHeadFile = "audit-head"

// auditChain is the chain's appending end.
type auditChain struct {
	mu       sync.Mutex
	head     AuditHead // newest entry written
	headPath string
}

// openAudit carries v1's rows into the chain and finds its head. A head
// record ahead of the database (entries removed while the master was
// down) is continued from, so the gap stays in the chain for verify to
// name; a head record missing while entries exist is noted in the chain.
func (d *DB) openAudit(ctx context.Context, dbPath string) error {
	d.audit.headPath = filepath.Join(filepath.Dir(dbPath), AuditHeadFile)
	if v, err := d.Version(ctx); err != nil || v < 2 {
		return err
	}
	last, err := d.lastAudit(ctx)
	if err != nil {
		return err
	}
	d.audit.head = last
	file, err := readAuditHead(d.audit.headPath)
	switch {
	case err != nil && last.Seq > 0:
		// Noted in the chain for good: the next append writes a new
		// head record, and verify could no longer tell.
		if _, err := d.AppendAudit(ctx, AuditEntry{User: "master", Action: "audit head lost", Result: "ok",
			Detail: fmt.Sprintf("at start the log ended at %d and %v", last.Seq, err)}); err != nil {
			return err
		}
	case err == nil && file.Seq > last.Seq:
		d.audit.head = file
	}
	return d.carryV1Audit(ctx)
}

// carryV1Audit appends the rows of v1's audit table to the chain and
// empties the table, at once.
func (d *DB) carryV1Audit(ctx context.Context) error {
	rows, err := d.db.QueryContext(ctx, `SELECT time, actor, action, detail FROM audit_v1 ORDER BY id`)
	if err != nil {
		return fmt.Errorf("read the v1 audit table: %w", err)
	}
	var old []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var t string
		if err := rows.Scan(&t, &e.User, &e.Action, &e.Detail); err != nil {
			rows.Close()
			return err
		}
		e.Time, e.Credential, e.Result = parseTime(t), "before the chain", "ok"
		old = append(old, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(old) == 0 {
		return err
	}
	d.audit.mu.Lock()
	defer d.audit.mu.Unlock()
	head := d.audit.head
	err = d.tx(ctx, func(tx *sql.Tx) error {
		for _, e := range old {
			e, err := insertAudit(ctx, tx, head, e)
			if err != nil {
				return err
			}
			head = AuditHead{Seq: e.Seq, Hash: e.Hash}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM audit_v1`)
		return err
	})
	if err != nil {
		return fmt.Errorf("carry the v1 audit table into the chain: %w", err)
	}
	d.audit.head = head
	return writeAuditHead(d.audit.headPath, head)
}

// AppendAudit chains e after the newest entry (setting its Seq, Prev,
// Hash and, when zero, Time) and records the new head beside the
// database. An error means the entry may not be kept: the caller must not
// act on what it records.
func (d *DB) AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	d.audit.mu.Lock()
	defer d.audit.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	err := d.tx(ctx, func(tx *sql.Tx) error {
		var err error
		e, err = insertAudit(ctx, tx, d.audit.head, e)
		return err
	})
	if err != nil {
		return e, fmt.Errorf("append to the audit log: %w", err)
	}
	d.audit.head = AuditHead{Seq: e.Seq, Hash: e.Hash}
	if err := writeAuditHead(d.audit.headPath, d.audit.head); err != nil {
		return e, fmt.Errorf("append to the audit log: %w", err)
	}
	return e, nil
}

// insertAudit inserts e as the entry after the given one.
func insertAudit(ctx context.Context, tx *sql.Tx, after AuditHead, e AuditEntry) (AuditEntry, error) {
	e.Seq, e.Prev, e.Time = after.Seq+1, after.Hash, e.Time.UTC()
	e.Hash = entryHash(e)
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (seq, time, user, credential, action, target, detail, result, intent, prev, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, auditTime(e.Time), e.User, e.Credential, e.Action, e.Target, e.Detail, e.Result, e.Intent, e.Prev, e.Hash)
	return e, err
}

func (d *DB) lastAudit(ctx context.Context) (AuditHead, error) {
	var h AuditHead
	err := d.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return AuditHead{}, nil
	}
	return h, err
}

// AuditQuery selects entries; zero fields select everything.
type AuditQuery struct {
	Since time.Time
	User  string
	// App selects entries whose target is the app (not those of nodes
	// and images, whose actions begin "node " and "image ").
	App   string
	Limit int // the newest Limit entries; 0 for all
}

// AuditLog returns the entries q selects, oldest first.
func (d *DB) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	where, args := []string{"1"}, []any{}
	if !q.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, auditTime(q.Since))
	}
	if q.User != "" {
		where, args = append(where, "user = ?"), append(args, q.User)
	}
	if q.App != "" {
		where = append(where, "target = ? AND action NOT LIKE 'node %' AND action NOT LIKE 'image %'")
		args = append(args, q.App)
	}
	limit := int64(-1)
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	rows, err := d.db.QueryContext(ctx, `SELECT * FROM (SELECT `+auditColumns+` FROM audit_log WHERE `+strings.Join(where, " AND ")+
		` ORDER BY seq DESC LIMIT ?) ORDER BY seq`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

const auditColumns = `seq, time, user, credential, action, target, detail, result, intent, prev, hash`

func scanAudit(rows *sql.Rows) (AuditEntry, error) {
	var e AuditEntry
	var t string
	err := rows.Scan(&e.Seq, &t, &e.User, &e.Credential, &e.Action, &e.Target, &e.Detail, &e.Result, &e.Intent, &e.Prev, &e.Hash)
	if err != nil {
		return e, fmt.Errorf("read the audit log: %w", err)
	}
	// A time that does not parse, or is not in the form hashed, stays
	// zero: the entry's hash then cannot match.
	if e.Time, err = time.Parse(auditTimeFormat, t); err != nil || auditTime(e.Time) != t {
		e.Time = time.Time{}
	}
	return e, nil
}

// VerifyAudit walks the whole chain and checks it against the head record
// and the given anchors (heads an operator recorded).
func (d *DB) VerifyAudit(ctx context.Context, recorded ...AuditHead) (AuditVerdict, error) {
	var anchors []AuditAnchor
	file, headErr := readAuditHead(d.audit.headPath)
	if headErr == nil {
		anchors = append(anchors, AuditAnchor{AuditHead: file, Name: "the head record"})
	}
	for _, h := range recorded {
		anchors = append(anchors, AuditAnchor{AuditHead: h, Name: "the recorded head"})
	}
	check := newChainCheck(anchors...)
	rows, err := d.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY seq`)
	if err != nil {
		return AuditVerdict{}, fmt.Errorf("read the audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return AuditVerdict{}, err
		}
		if !check.add(e) {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return AuditVerdict{}, fmt.Errorf("read the audit log: %w", err)
	}
	v := check.finish()
	if v.OK() && headErr != nil && v.Entries > 0 {
		v.Problem = fmt.Sprintf("%v: whether the newest entries were removed cannot be told", headErr)
	}
	return v, nil
}

// writeAuditHead replaces the head record: written aside, then renamed,
// so it is always whole. (Not fsynced: the database is not either, with
// synchronous=NORMAL; after a power cut the two may disagree on the last
// entries, which verify then names.)
func writeAuditHead(path string, h AuditHead) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(h.String()+"\n"), 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the audit head record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the audit head record: %w", err)
	}
	return nil
}

func readAuditHead(path string) (AuditHead, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return AuditHead{}, fmt.Errorf("read the audit head record: %w", err)
	}
	h, err := parseAuditHead(strings.TrimSuffix(string(b), "\n"))
	if err != nil {
		return h, fmt.Errorf("the audit head record %s: %w", path, err)
	}
	return h, nil
}

// parseAuditHead reads the head record: "SEQ HASH".
func parseAuditHead(s string) (AuditHead, error) {
	seq, hash, ok := strings.Cut(s, " ")
	if !ok {
		seq, hash, ok = strings.Cut(s, ":")
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 1 || len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return AuditHead{}, fmt.Errorf("%q is not a head: want SEQ HASH (the sequence number and the hex SHA-256 verify prints)", s)
	}
	return AuditHead{Seq: n, Hash: hash}, nil
}
