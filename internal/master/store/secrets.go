package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// secretsV4: see migrations in store.go. One row per secret of an app: its
// current version's envelope, age ciphertext the master cannot open
// (package secret). Earlier versions are not kept: a rollback runs the
// app's old code with its current secrets.
const secretsV4 = `CREATE TABLE secrets (
		tenant   TEXT NOT NULL,
		app      TEXT NOT NULL,
		name     TEXT NOT NULL,
		version  INTEGER NOT NULL,
		envelope BLOB NOT NULL,
		created  TEXT NOT NULL,
		updated  TEXT NOT NULL,
		PRIMARY KEY (tenant, app, name)
	);`

// Secret is one secret of an app as the master keeps it: ciphertext.
type Secret struct {
	Tenant   string    `json:"tenant"`
	App      string    `json:"app"`
	Name     string    `json:"name"`
	Version  int       `json:"version"`
	Envelope []byte    `json:"envelope,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// PutSecret stores s as the secret's next version: s.Version must be one
// more than the stored one (1 for a new secret), so two operators setting
// the same secret at once cannot both win.
func (d *DB) PutSecret(ctx context.Context, s Secret) (Secret, error) {
	err := d.tx(ctx, func(tx *sql.Tx) error {
		var cur int
		var created string
		err := tx.QueryRowContext(ctx, `SELECT version, created FROM secrets WHERE tenant = ? AND app = ? AND name = ?`, s.Tenant, s.App, s.Name).Scan(&cur, &created)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		if s.Version != cur+1 {
			return fmt.Errorf("secret %s of %s is at version %d, so the next is %d, not %d (set again): %w", s.Name, s.App, cur, cur+1, s.Version, errs.ErrConflict)
		}
		t := now()
		if created == "" {
			created = t
		}
		s.Created, s.Updated = parseTime(created), parseTime(t)
		_, err = tx.ExecContext(ctx, `INSERT INTO secrets (tenant, app, name, version, envelope, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, app, name) DO UPDATE SET version = excluded.version, envelope = excluded.envelope, updated = excluded.updated`,
			s.Tenant, s.App, s.Name, s.Version, s.Envelope, created, t)
		return err
	})
	return s, err
}

// Secrets lists an app's secrets (every app's in the tenant when app is
// "", every tenant's when tenant is ""), with their envelopes.
func (d *DB) Secrets(ctx context.Context, tenant, app string) ([]Secret, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT tenant, app, name, version, envelope, created, updated FROM secrets
		WHERE (? = '' OR tenant = ?) AND (? = '' OR app = ?) ORDER BY tenant, app, name`, tenant, tenant, app, app)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Secret
	for rows.Next() {
		var s Secret
		var c, u string
		if err := rows.Scan(&s.Tenant, &s.App, &s.Name, &s.Version, &s.Envelope, &c, &u); err != nil {
			return nil, err
		}
		s.Created, s.Updated = parseTime(c), parseTime(u)
		out = append(out, s)
	}
	return out, rows.Err()
}

// GetSecret returns one secret.
func (d *DB) GetSecret(ctx context.Context, tenant, app, name string) (Secret, error) {
	s := Secret{Tenant: tenant, App: app, Name: name}
	var c, u string
	err := d.db.QueryRowContext(ctx, `SELECT version, envelope, created, updated FROM secrets WHERE tenant = ? AND app = ? AND name = ?`,
		tenant, app, name).Scan(&s.Version, &s.Envelope, &c, &u)
	if err == sql.ErrNoRows {
		return s, fmt.Errorf("secret %s of app %s is not set (moat secret set %s %s): %w", name, app, app, name, errs.ErrNotFound)
	}
	s.Created, s.Updated = parseTime(c), parseTime(u)
	return s, err
}

// RemoveSecret deletes a secret.
func (d *DB) RemoveSecret(ctx context.Context, tenant, app, name string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM secrets WHERE tenant = ? AND app = ? AND name = ?`, tenant, app, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("secret %s of app %s: %w", name, app, errs.ErrNotFound)
	}
	return nil
}

// ReplaceEnvelopes swaps the envelopes of the given secrets, all or none:
// a rotation re-encrypts every secret to a new key, keeping its version.
// Each must still be at the version given, or nothing changes.
func (d *DB) ReplaceEnvelopes(ctx context.Context, ss []Secret) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		for _, s := range ss {
			res, err := tx.ExecContext(ctx, `UPDATE secrets SET envelope = ? WHERE tenant = ? AND app = ? AND name = ? AND version = ?`,
				s.Envelope, s.Tenant, s.App, s.Name, s.Version)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("secret %s of %s/%s is no longer at version %d (changed during the rotation: rotate again): %w", s.Name, s.Tenant, s.App, s.Version, errs.ErrConflict)
			}
		}
		return nil
	})
}
