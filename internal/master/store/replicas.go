package store

import (
	"context"
	"time"
)

// Replica is the master's intent that one copy of an app runs on a node
// (desired Run) or no longer does (Stop: it was replaced, scaled away,
// drained or its app removed; the reconciler stops its container and
// then forgets it). Its ID names its container on the node.
type Replica struct {
	ID       string    `json:"id"`
	App      string    `json:"app"`
	Revision int       `json:"revision"`
	Template string    `json:"template"`
	Node     string    `json:"node"`
	Desired  string    `json:"desired"`
	Note     string    `json:"note,omitempty"`
	Created  time.Time `json:"created"`
}

// Desired states of a replica.
const (
	Run  = "run"
	Stop = "stop"
)

// AddReplica records a new replica.
func (d *DB) AddReplica(ctx context.Context, r Replica) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO replicas (id, app, revision, template, node, desired, note, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.App, r.Revision, r.Template, r.Node, r.Desired, r.Note, r.Created.UTC().Format(time.RFC3339Nano))
	return err
}

// StopReplica marks a replica to be stopped, saying why.
func (d *DB) StopReplica(ctx context.Context, id, note string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE replicas SET desired = ?, note = ? WHERE id = ?`, Stop, note, id)
	return err
}

// NoteReplica records a note on a replica the master still wants running
// (that it is moving for spread, say).
func (d *DB) NoteReplica(ctx context.Context, id, note string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE replicas SET note = ? WHERE id = ? AND desired = ?`, note, id, Run)
	return err
}

// DeleteReplica forgets a replica whose container is gone.
func (d *DB) DeleteReplica(ctx context.Context, id string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM replicas WHERE id = ?`, id)
	return err
}

// Replicas returns every replica record.
func (d *DB) Replicas(ctx context.Context) ([]Replica, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, app, revision, template, node, desired, note, created FROM replicas ORDER BY app, created, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Replica
	for rows.Next() {
		var r Replica
		var created string
		if err := rows.Scan(&r.ID, &r.App, &r.Revision, &r.Template, &r.Node, &r.Desired, &r.Note, &created); err != nil {
			return nil, err
		}
		r.Created = parseTime(created)
		out = append(out, r)
	}
	return out, rows.Err()
}
