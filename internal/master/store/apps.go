package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// App is an app's pointer to its target revision, and to its last
// revision that became fully healthy (where a failed deploy rolls back to).
type App struct {
	Name     string    `json:"name"`
	Revision int       `json:"revision"`
	Stable   int       `json:"stable"`
	Created  time.Time `json:"created"`
}

// Revision is one change to an app: deploys, scales and rollbacks each
// make one.
type Revision struct {
	App      string          `json:"app"`
	Revision int             `json:"revision"`
	Spec     json.RawMessage `json:"spec"`
	Image    string          `json:"image"`    // manifest digest in the master's store
	Template string          `json:"template"` // hash of what a replica runs: equal templates need no restart
	Cause    string          `json:"cause"`    // deploy, scale, rollback to N, ...
	Status   string          `json:"status"`
	Message  string          `json:"message,omitempty"`
	Created  time.Time       `json:"created"`
}

// Revision statuses.
const (
	StatusProgressing = "progressing"
	StatusCanary      = "canary" // canaries healthy, waiting for promotion
	StatusDeployed    = "deployed"
	StatusFailed      = "failed" // and rolled back
	StatusSuperseded  = "superseded"
)

// NewRevision records a new revision of app (creating the app) and makes
// it the target. The previous target, if still in progress, is superseded.
func (d *DB) NewRevision(ctx context.Context, r Revision) (Revision, error) {
	err := d.tx(ctx, func(tx *sql.Tx) error {
		var cur int
		err := tx.QueryRowContext(ctx, `SELECT revision FROM apps WHERE name = ?`, r.App).Scan(&cur)
		switch {
		case err == sql.ErrNoRows:
			if _, err := tx.ExecContext(ctx, `INSERT INTO apps (name, revision, created) VALUES (?, 0, ?)`, r.App, now()); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		var max int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(revision), 0) FROM revisions WHERE app = ?`, r.App).Scan(&max); err != nil {
			return err
		}
		r.Revision, r.Status, r.Created = max+1, StatusProgressing, time.Now().UTC()
		if _, err := tx.ExecContext(ctx, `UPDATE revisions SET status = ? WHERE app = ? AND status IN (?, ?)`,
			StatusSuperseded, r.App, StatusProgressing, StatusCanary); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO revisions (app, revision, spec, image, template, cause, status, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.App, r.Revision, string(r.Spec), r.Image, r.Template, r.Cause, r.Status, r.Created.Format(time.RFC3339Nano)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE apps SET revision = ? WHERE name = ?`, r.Revision, r.App)
		return err
	})
	return r, err
}

// SetStatus records how a revision's rollout went. Deployed also makes it
// the app's stable revision.
func (d *DB) SetStatus(ctx context.Context, app string, rev int, status, message string) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE revisions SET status = ?, message = ? WHERE app = ? AND revision = ?`, status, message, app, rev); err != nil {
			return err
		}
		if status == StatusDeployed {
			_, err := tx.ExecContext(ctx, `UPDATE apps SET stable = ? WHERE name = ?`, rev, app)
			return err
		}
		return nil
	})
}

// Apps returns every app, by name.
func (d *DB) Apps(ctx context.Context) ([]App, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT name, revision, stable, created FROM apps ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []App
	for rows.Next() {
		var a App
		var created string
		if err := rows.Scan(&a.Name, &a.Revision, &a.Stable, &created); err != nil {
			return nil, err
		}
		a.Created = parseTime(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// GetApp returns one app.
func (d *DB) GetApp(ctx context.Context, name string) (App, error) {
	var a App
	var created string
	err := d.db.QueryRowContext(ctx, `SELECT name, revision, stable, created FROM apps WHERE name = ?`, name).Scan(&a.Name, &a.Revision, &a.Stable, &created)
	a.Created = parseTime(created)
	return a, notFound(err, fmt.Sprintf("app %q", name))
}

// Revisions returns an app's revisions, oldest first.
func (d *DB) Revisions(ctx context.Context, app string) ([]Revision, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT app, revision, spec, image, template, cause, status, message, created FROM revisions WHERE app = ? ORDER BY revision`, app)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Revision
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetRevision returns one revision.
func (d *DB) GetRevision(ctx context.Context, app string, rev int) (Revision, error) {
	row := d.db.QueryRowContext(ctx, `SELECT app, revision, spec, image, template, cause, status, message, created FROM revisions WHERE app = ? AND revision = ?`, app, rev)
	r, err := scanRevision(row)
	return r, notFound(err, fmt.Sprintf("app %q revision %d", app, rev))
}

func scanRevision(s scanner) (Revision, error) {
	var r Revision
	var spec, created string
	err := s.Scan(&r.App, &r.Revision, &spec, &r.Image, &r.Template, &r.Cause, &r.Status, &r.Message, &created)
	r.Spec, r.Created = json.RawMessage(spec), parseTime(created)
	return r, err
}

// DeleteApp removes an app and its revisions; its replicas are marked to
// stop (the reconciler removes them from the nodes).
func (d *DB) DeleteApp(ctx context.Context, name string) error {
	defer d.replicasChanged()
	return d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM apps WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("app %q: %w", name, errs.ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `UPDATE replicas SET desired = ?, note = 'app removed' WHERE app = ?`, Stop, name)
		return err
	})
}
