package store

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
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
	return d.AddReplicas(ctx, []Replica{r})
}

// AddReplicas records new replicas, in one transaction: a placement step
// of a thousand replicas is one commit, not a thousand.
func (d *DB) AddReplicas(ctx context.Context, rs []Replica) error {
	err := d.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO replicas (id, app, revision, template, node, desired, note, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range rs {
			if _, err := stmt.ExecContext(ctx, r.ID, r.App, r.Revision, r.Template, r.Node, r.Desired, r.Note, r.Created.UTC().Format(time.RFC3339Nano)); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		d.cached(func(m map[string]Replica) {
			for _, r := range rs {
				r.Created = r.Created.UTC()
				m[r.ID] = r
			}
		})
	}
	return err
}

// StopReplica marks a replica to be stopped, saying why.
func (d *DB) StopReplica(ctx context.Context, id, note string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE replicas SET desired = ?, note = ? WHERE id = ?`, Stop, note, id)
	if err == nil {
		d.cached(func(m map[string]Replica) {
			if r, ok := m[id]; ok {
				r.Desired, r.Note = Stop, note
				m[id] = r
			}
		})
	}
	return err
}

// NoteReplica records a note on a replica the master still wants running
// (that it is moving for spread, say).
func (d *DB) NoteReplica(ctx context.Context, id, note string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE replicas SET note = ? WHERE id = ? AND desired = ?`, note, id, Run)
	if err == nil {
		d.cached(func(m map[string]Replica) {
			if r, ok := m[id]; ok && r.Desired == Run {
				r.Note = note
				m[id] = r
			}
		})
	}
	return err
}

// DeleteReplica forgets a replica whose container is gone.
func (d *DB) DeleteReplica(ctx context.Context, id string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM replicas WHERE id = ?`, id)
	if err == nil {
		d.cached(func(m map[string]Replica) { delete(m, id) })
	}
	return err
}

// Replicas returns every replica record, by app, then age, then ID. It
// reads the database once; after that the records are kept in memory,
// written through by every change.
func (d *DB) Replicas(ctx context.Context) ([]Replica, error) {
	d.replicasMu.Lock()
	defer d.replicasMu.Unlock()
	if d.replicas == nil {
		m, err := d.readReplicas(ctx)
		if err != nil {
			return nil, err
		}
		d.replicas = m
	}
	out := make([]Replica, 0, len(d.replicas))
	for _, r := range d.replicas {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Replica) int {
		return cmp.Or(cmp.Compare(a.App, b.App), a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// cached applies a change to the kept records, if they are kept yet.
func (d *DB) cached(change func(map[string]Replica)) {
	d.replicasMu.Lock()
	defer d.replicasMu.Unlock()
	if d.replicas != nil {
		change(d.replicas)
	}
}

// replicasChanged drops the kept records, after a write that changed many
// (removing an app); the next read reads the database.
func (d *DB) replicasChanged() {
	d.replicasMu.Lock()
	d.replicas = nil
	d.replicasMu.Unlock()
}

func (d *DB) readReplicas(ctx context.Context) (map[string]Replica, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, app, revision, template, node, desired, note, created FROM replicas`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Replica{}
	for rows.Next() {
		var r Replica
		var created string
		if err := rows.Scan(&r.ID, &r.App, &r.Revision, &r.Template, &r.Node, &r.Desired, &r.Note, &created); err != nil {
			return nil, err
		}
		r.Created = parseTime(created)
		out[r.ID] = r
	}
	return out, rows.Err()
}
