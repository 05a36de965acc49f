package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// secretsV4: see migrations in store.go. One row per version of a secret
// of an app: its envelope, age ciphertext the master cannot open (package
// secret). A revision runs the versions it pinned, so a failed rollout of
// a new version goes back to the one before; the last KeepSecretVersions
// of each secret are kept.
const secretsV4 = `CREATE TABLE secrets (
		tenant   TEXT NOT NULL,
		app      TEXT NOT NULL,
		name     TEXT NOT NULL,
		version  INTEGER NOT NULL,
		envelope BLOB NOT NULL,
		created  TEXT NOT NULL,
		PRIMARY KEY (tenant, app, name, version)
	);`

// KeepSecretVersions is how many versions of each secret are kept.
const KeepSecretVersions = 5

// Secret is one version of a secret of an app as the master keeps it:
// ciphertext. Created is when the secret was first set, Updated when this
// version was.
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
// more than the latest (1 for a new secret), so two operators setting the
// same secret at once cannot both win.
func (d *DB) PutSecret(ctx context.Context, s Secret) (Secret, error) {
	err := d.tx(ctx, func(tx *sql.Tx) error {
		var cur int
		var created sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0), MIN(created) FROM secrets WHERE tenant = ? AND app = ? AND name = ?`,
			s.Tenant, s.App, s.Name).Scan(&cur, &created)
		if err != nil {
			return err
		}
		if s.Version != cur+1 {
			return fmt.Errorf("secret %s of %s is at version %d, so the next is %d, not %d (set it again): %w", s.Name, s.App, cur, cur+1, s.Version, errs.ErrConflict)
		}
		t := now()
		s.Created, s.Updated = parseTime(t), parseTime(t)
		if created.Valid {
			s.Created = parseTime(created.String)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO secrets (tenant, app, name, version, envelope, created) VALUES (?, ?, ?, ?, ?, ?)`,
			s.Tenant, s.App, s.Name, s.Version, s.Envelope, t); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM secrets WHERE tenant = ? AND app = ? AND name = ? AND version <= ?`,
			s.Tenant, s.App, s.Name, s.Version-KeepSecretVersions)
		return err
	})
	return s, err
}

// Secrets lists the latest version of each secret of an app (of every app
// in the tenant when app is "", of every tenant's when tenant is "").
func (d *DB) Secrets(ctx context.Context, tenant, app string) ([]Secret, error) {
	return d.querySecrets(ctx, `SELECT s.tenant, s.app, s.name, s.version, s.envelope,
			(SELECT MIN(created) FROM secrets f WHERE f.tenant = s.tenant AND f.app = s.app AND f.name = s.name), s.created
		FROM secrets s WHERE (? = '' OR s.tenant = ?) AND (? = '' OR s.app = ?)
			AND s.version = (SELECT MAX(version) FROM secrets l WHERE l.tenant = s.tenant AND l.app = s.app AND l.name = s.name)
		ORDER BY s.tenant, s.app, s.name`, tenant, tenant, app, app)
}

// SecretVersions lists every version kept of every secret, for a rotation.
func (d *DB) SecretVersions(ctx context.Context, tenant string) ([]Secret, error) {
	return d.querySecrets(ctx, `SELECT tenant, app, name, version, envelope, created, created FROM secrets
		WHERE (? = '' OR tenant = ?) ORDER BY tenant, app, name, version`, tenant, tenant)
}

func (d *DB) querySecrets(ctx context.Context, q string, args ...any) ([]Secret, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
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

// GetSecret returns one version of a secret; version 0 is the latest.
func (d *DB) GetSecret(ctx context.Context, tenant, app, name string, version int) (Secret, error) {
	s := Secret{Tenant: tenant, App: app, Name: name}
	var u string
	err := d.db.QueryRowContext(ctx, `SELECT version, envelope, created FROM secrets WHERE tenant = ? AND app = ? AND name = ?
		AND version = CASE WHEN ? > 0 THEN ? ELSE (SELECT MAX(version) FROM secrets WHERE tenant = ? AND app = ? AND name = ?) END`,
		tenant, app, name, version, version, tenant, app, name).Scan(&s.Version, &s.Envelope, &u)
	switch {
	case err == sql.ErrNoRows && version > 0:
		return s, fmt.Errorf("secret %s of app %s has no version %d any more (the last %d are kept): %w", name, app, version, KeepSecretVersions, errs.ErrNotFound)
	case err == sql.ErrNoRows:
		return s, fmt.Errorf("secret %s of app %s is not set (moat secret set %s %s): %w", name, app, app, name, errs.ErrNotFound)
	}
	s.Updated = parseTime(u)
	return s, err
}

// RemoveSecret deletes a secret, every version.
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

// ReplaceEnvelopes swaps the envelopes of the given versions, all or none:
// a rotation re-encrypts every version to a new key, keeping its number.
// Each version must still be kept, or nothing changes.
func (d *DB) ReplaceEnvelopes(ctx context.Context, ss []Secret) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		for _, s := range ss {
			res, err := tx.ExecContext(ctx, `UPDATE secrets SET envelope = ? WHERE tenant = ? AND app = ? AND name = ? AND version = ?`,
				s.Envelope, s.Tenant, s.App, s.Name, s.Version)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("secret %s of %s/%s has no version %d any more (removed during the rotation: rotate again): %w", s.Name, s.Tenant, s.App, s.Version, errs.ErrConflict)
			}
		}
		return nil
	})
}
