package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// eventsV8: see migrations in store.go. The event log (what happened to
// nodes and apps: up, down, deploys, restarts, OOM kills, alerts) and the
// metrics puller's cursor per node.
//
// Events are kept bounded (PruneEvents): the newest MaxEvents and none
// older than EventsMaxAge. Times are Unix nanoseconds, so ranges compare
// as numbers. app is the app's key (AppKey) and tenant the tenant it
// belongs to ("" for a node's events, which only those who may list
// nodes see).
const eventsV8 = `CREATE TABLE events (
		id       INTEGER PRIMARY KEY,
		time     INTEGER NOT NULL,
		kind     TEXT NOT NULL,
		tenant   TEXT NOT NULL DEFAULT '',
		node     TEXT NOT NULL DEFAULT '',
		app      TEXT NOT NULL DEFAULT '',
		replica  TEXT NOT NULL DEFAULT '',
		revision INTEGER NOT NULL DEFAULT 0,
		message  TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX events_by_time ON events(time);
	CREATE INDEX events_by_app ON events(app, id);
	CREATE INDEX events_by_node ON events(node, id);
	CREATE TABLE metrics_cursors (
		node    TEXT PRIMARY KEY,
		seq     INTEGER NOT NULL,
		updated INTEGER NOT NULL
	);`

// The event log's bounds: a crash-looping container on every node of a
// large cluster writes a few events a minute each, and the log must not
// grow the master's disk without end. 100,000 rows of about 200 bytes are
// 20 MB; 30 days is longer than anyone reads back through moat events
// (the metrics' minute archive holds 14).
const (
	MaxEvents    = 100_000
	EventsMaxAge = 30 * 24 * time.Hour
)

// Event is one row of the event log.
type Event struct {
	ID       int64
	Time     time.Time
	Kind     string
	Tenant   string
	Node     string
	App      string // the app's key
	Replica  string
	Revision int
	Message  string
}

// EventQuery selects events; zero fields select all.
type EventQuery struct {
	After  int64 // only events with a greater ID
	Since  time.Time
	App    string // an app's key
	Node   string
	Before int64 // only events with a smaller ID (0: no bound)
	// Tenant: only this tenant's apps' events ("": every tenant's); Nodes:
	// and nodes' own events (those of no app).
	Tenant string
	Nodes  bool
	Limit  int  // the newest Limit (0: all)
	Oldest bool // the oldest Limit instead
}

// AddEvents appends events in one transaction and returns their IDs.
// Events with a zero Time are stamped now.
func (d *DB) AddEvents(ctx context.Context, events []Event) ([]int64, error) {
	ids := make([]int64, 0, len(events))
	err := d.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO events (time, kind, tenant, node, app, replica, revision, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, e := range events {
			if e.Time.IsZero() {
				e.Time = time.Now()
			}
			res, err := stmt.ExecContext(ctx, e.Time.UnixNano(), e.Kind, e.Tenant, e.Node, e.App, e.Replica, e.Revision, e.Message)
			if err != nil {
				return err
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append %d events: %w", len(events), err)
	}
	return ids, nil
}

// PruneEvents removes the events beyond the bounds (MaxEvents newest, no
// older than EventsMaxAge, given as keep and maxAge) and says how many.
func (d *DB) PruneEvents(ctx context.Context, keep int, maxAge time.Duration) (int64, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM events WHERE id <= (SELECT COALESCE(MAX(id), 0) FROM events) - ? OR time < ?`,
		keep, time.Now().Add(-maxAge).UnixNano())
	if err != nil {
		return 0, fmt.Errorf("prune the event log: %w", err)
	}
	return res.RowsAffected()
}

// Events reads events, oldest first.
func (d *DB) Events(ctx context.Context, q EventQuery) ([]Event, error) {
	where, args := []string{"id > ?"}, []any{q.After}
	if !q.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, q.Since.UnixNano())
	}
	if q.App != "" {
		where, args = append(where, "app = ?"), append(args, q.App)
	}
	if q.Node != "" {
		where, args = append(where, "node = ?"), append(args, q.Node)
	}
	if q.Before > 0 {
		where, args = append(where, "id < ?"), append(args, q.Before)
	}
	switch {
	case q.Tenant == "" && !q.Nodes:
		where = append(where, "tenant != ''")
	case q.Tenant != "" && q.Nodes:
		where, args = append(where, "tenant IN (?, '')"), append(args, q.Tenant)
	case q.Tenant != "":
		where, args = append(where, "tenant = ?"), append(args, q.Tenant)
	}
	limit := int64(-1)
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	order := "DESC"
	if q.Oldest {
		order = "ASC"
	}
	rows, err := d.db.QueryContext(ctx, `SELECT * FROM (SELECT id, time, kind, tenant, node, app, replica, revision, message FROM events WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id `+order+` LIMIT ?) ORDER BY id`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read the event log: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var ns int64
		if err := rows.Scan(&e.ID, &ns, &e.Kind, &e.Tenant, &e.Node, &e.App, &e.Replica, &e.Revision, &e.Message); err != nil {
			return nil, fmt.Errorf("read the event log: %w", err)
		}
		e.Time = time.Unix(0, ns).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastEventID is the newest event's ID (0 for none).
func (d *DB) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	err := d.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&id)
	return id, err
}

// MetricsCursor is where the master's pull of a node's metrics ring
// stands: the last sequence number ingested (0: none yet).
func (d *DB) MetricsCursor(ctx context.Context, node string) (uint64, error) {
	var seq int64
	err := d.db.QueryRowContext(ctx, `SELECT seq FROM metrics_cursors WHERE node = ?`, node).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("metrics cursor of %s: %w", node, err)
	}
	return uint64(seq), nil
}

// SetMetricsCursor records where the pull of a node's ring stands.
func (d *DB) SetMetricsCursor(ctx context.Context, node string, seq uint64) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO metrics_cursors (node, seq, updated) VALUES (?, ?, ?)
		ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, updated = excluded.updated`, node, int64(seq), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("record the metrics cursor of %s: %w", node, err)
	}
	return nil
}

// SetMetricsCursors records where the pulls of several nodes stand, in
// one transaction.
func (d *DB) SetMetricsCursors(ctx context.Context, cursors map[string]uint64) error {
	err := d.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO metrics_cursors (node, seq, updated) VALUES (?, ?, ?)
			ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, updated = excluded.updated`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		now := time.Now().UnixNano()
		for node, seq := range cursors {
			if _, err := stmt.ExecContext(ctx, node, int64(seq), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record the metrics cursors of %d nodes: %w", len(cursors), err)
	}
	return nil
}

// RemoveMetricsCursor forgets a node's cursor (the node was removed).
func (d *DB) RemoveMetricsCursor(ctx context.Context, node string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM metrics_cursors WHERE node = ?`, node)
	return err
}

// Replica is one replica's record, from those kept in memory (Replicas
// reads them first if need be); false when there is none.
func (d *DB) Replica(ctx context.Context, id string) (Replica, bool, error) {
	d.replicasMu.Lock()
	kept := d.replicas != nil
	r, ok := d.replicas[id]
	d.replicasMu.Unlock()
	if kept {
		return r, ok, nil
	}
	if _, err := d.Replicas(ctx); err != nil {
		return Replica{}, false, err
	}
	d.replicasMu.Lock()
	defer d.replicasMu.Unlock()
	r, ok = d.replicas[id]
	return r, ok, nil
}
