package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// usersV3: see migrations in store.go. A user is a name with SSH keys
// (each fingerprint belongs to one user: the fingerprint is how sshd's
// lookups find them), certificate principals (each names one user), and
// roles per tenant. Trusted certificate authorities are the cluster's,
// not a user's.
const usersV3 = `CREATE TABLE users (
		name    TEXT PRIMARY KEY,
		created TEXT NOT NULL
	);
	CREATE TABLE user_keys (
		fingerprint TEXT PRIMARY KEY,
		user        TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
		key         TEXT NOT NULL,
		added       TEXT NOT NULL
	);
	CREATE INDEX user_keys_by_user ON user_keys(user);
	CREATE TABLE user_principals (
		principal TEXT PRIMARY KEY,
		user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE
	);
	CREATE INDEX user_principals_by_user ON user_principals(user);
	CREATE TABLE user_cas (
		name        TEXT PRIMARY KEY,
		fingerprint TEXT NOT NULL UNIQUE,
		key         TEXT NOT NULL,
		added       TEXT NOT NULL
	);
	CREATE TABLE role_bindings (
		user   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
		tenant TEXT NOT NULL,
		role   TEXT NOT NULL,
		PRIMARY KEY (user, tenant)
	);`

// User is a user with everything that names them.
type User struct {
	Name       string
	Created    time.Time
	Keys       []UserKey
	Principals []string
	Roles      []RoleBinding
}

// UserKey is one of a user's SSH public keys.
type UserKey struct {
	Fingerprint string // SHA256:...
	Key         string // TYPE BASE64
	Added       time.Time
}

// RoleBinding is a user's role in a tenant ("*": every tenant).
type RoleBinding struct {
	Tenant string
	Role   string
}

// CA is a certificate authority whose user certificates the cluster
// trusts.
type CA struct {
	Name        string
	Fingerprint string
	Key         string // TYPE BASE64
	Added       time.Time
}

// AddUser creates a user with their keys, principals and roles, all or
// nothing: a name, key or principal someone already has is a conflict
// naming it.
func (d *DB) AddUser(ctx context.Context, u User) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		t := now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (name, created) VALUES (?, ?)`, u.Name, t); err != nil {
			return userConflict(err, "user %s exists", u.Name)
		}
		for _, k := range u.Keys {
			if err := addKey(ctx, tx, u.Name, k, t); err != nil {
				return err
			}
		}
		for _, p := range u.Principals {
			if err := addPrincipal(ctx, tx, u.Name, p); err != nil {
				return err
			}
		}
		for _, r := range u.Roles {
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO role_bindings (user, tenant, role) VALUES (?, ?, ?)`, u.Name, r.Tenant, r.Role); err != nil {
				return err
			}
		}
		return nil
	})
}

func addKey(ctx context.Context, tx *sql.Tx, user string, k UserKey, t string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO user_keys (fingerprint, user, key, added) VALUES (?, ?, ?, ?)`, k.Fingerprint, user, k.Key, t); err != nil {
		var owner string
		if tx.QueryRowContext(ctx, `SELECT user FROM user_keys WHERE fingerprint = ?`, k.Fingerprint).Scan(&owner) == nil {
			return fmt.Errorf("key %s is already user %s's: %w", k.Fingerprint, owner, errs.ErrConflict)
		}
		return err
	}
	return nil
}

func addPrincipal(ctx context.Context, tx *sql.Tx, user, p string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO user_principals (principal, user) VALUES (?, ?)`, p, user); err != nil {
		var owner string
		if tx.QueryRowContext(ctx, `SELECT user FROM user_principals WHERE principal = ?`, p).Scan(&owner) == nil {
			return fmt.Errorf("principal %s already names user %s: %w", p, owner, errs.ErrConflict)
		}
		return err
	}
	return nil
}

// AddUserKey gives an existing user one more key.
func (d *DB) AddUserKey(ctx context.Context, user string, k UserKey) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, user); err != nil {
			return err
		}
		return addKey(ctx, tx, user, k, now())
	})
}

// RemoveUserKey removes one of a user's keys.
func (d *DB) RemoveUserKey(ctx context.Context, user, fingerprint string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM user_keys WHERE user = ? AND fingerprint = ?`, user, fingerprint)
	return userAffected(res, err, fmt.Sprintf("user %s has no key %s", user, fingerprint))
}

// RemoveUser removes a user and everything of theirs.
func (d *DB) RemoveUser(ctx context.Context, name string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	return userAffected(res, err, "user "+name)
}

// SetRole gives a user a role in a tenant, replacing the one they had
// there.
func (d *DB) SetRole(ctx context.Context, user string, r RoleBinding) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, user); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO role_bindings (user, tenant, role) VALUES (?, ?, ?)`, user, r.Tenant, r.Role)
		return err
	})
}

// RemoveRole removes a user's role in a tenant.
func (d *DB) RemoveRole(ctx context.Context, user, tenant string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM role_bindings WHERE user = ? AND tenant = ?`, user, tenant)
	return userAffected(res, err, fmt.Sprintf("user %s has no role in tenant %s", user, tenant))
}

// Users returns every user, by name.
func (d *DB) Users(ctx context.Context) ([]User, error) {
	return d.users(ctx, "")
}

// User returns one user.
func (d *DB) User(ctx context.Context, name string) (User, error) {
	us, err := d.users(ctx, name)
	if err != nil {
		return User{}, err
	}
	if len(us) == 0 {
		return User{}, fmt.Errorf("user %s: %w", name, errs.ErrNotFound)
	}
	return us[0], nil
}

// users reads every user, or the one named.
func (d *DB) users(ctx context.Context, name string) ([]User, error) {
	where, args := "", []any{}
	if name != "" {
		where, args = " WHERE name = ?", []any{name}
	}
	rows, err := d.db.QueryContext(ctx, `SELECT name, created FROM users`+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	var out []User
	byName := map[string]*User{}
	for rows.Next() {
		var u User
		var t string
		if err := rows.Scan(&u.Name, &t); err != nil {
			rows.Close()
			return nil, err
		}
		u.Created = parseTime(t)
		out = append(out, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		byName[out[i].Name] = &out[i]
	}
	userWhere := strings.Replace(where, "name", "user", 1)
	err = d.eachUserRow(ctx, `SELECT user, fingerprint, key, added FROM user_keys`+userWhere+` ORDER BY added, fingerprint`, args, func(rows *sql.Rows) error {
		var user, t string
		var k UserKey
		if err := rows.Scan(&user, &k.Fingerprint, &k.Key, &t); err != nil {
			return err
		}
		k.Added = parseTime(t)
		if u := byName[user]; u != nil {
			u.Keys = append(u.Keys, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = d.eachUserRow(ctx, `SELECT user, principal FROM user_principals`+userWhere+` ORDER BY principal`, args, func(rows *sql.Rows) error {
		var user, p string
		if err := rows.Scan(&user, &p); err != nil {
			return err
		}
		if u := byName[user]; u != nil {
			u.Principals = append(u.Principals, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = d.eachUserRow(ctx, `SELECT user, tenant, role FROM role_bindings`+userWhere+` ORDER BY tenant`, args, func(rows *sql.Rows) error {
		var user string
		var r RoleBinding
		if err := rows.Scan(&user, &r.Tenant, &r.Role); err != nil {
			return err
		}
		if u := byName[user]; u != nil {
			u.Roles = append(u.Roles, r)
		}
		return nil
	})
	return out, err
}

// TrustCA trusts a certificate authority's user certificates.
func (d *DB) TrustCA(ctx context.Context, ca CA) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO user_cas (name, fingerprint, key, added) VALUES (?, ?, ?, ?)`, ca.Name, ca.Fingerprint, ca.Key, now())
	if err != nil {
		var owner string
		if d.db.QueryRowContext(ctx, `SELECT name FROM user_cas WHERE fingerprint = ?`, ca.Fingerprint).Scan(&owner) == nil {
			return fmt.Errorf("CA %s is already trusted, as %s: %w", ca.Fingerprint, owner, errs.ErrConflict)
		}
		return userConflict(err, "a CA named %s is already trusted", ca.Name)
	}
	return nil
}

// UntrustCA stops trusting a certificate authority.
func (d *DB) UntrustCA(ctx context.Context, name string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM user_cas WHERE name = ?`, name)
	return userAffected(res, err, "CA "+name)
}

// CAs returns the trusted certificate authorities, by name.
func (d *DB) CAs(ctx context.Context) ([]CA, error) {
	var out []CA
	err := d.eachUserRow(ctx, `SELECT name, fingerprint, key, added FROM user_cas ORDER BY name`, nil, func(rows *sql.Rows) error {
		var c CA
		var t string
		if err := rows.Scan(&c.Name, &c.Fingerprint, &c.Key, &t); err != nil {
			return err
		}
		c.Added = parseTime(t)
		out = append(out, c)
		return nil
	})
	return out, err
}

func (d *DB) eachUserRow(ctx context.Context, query string, args []any, f func(*sql.Rows) error) error {
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func userExists(ctx context.Context, tx *sql.Tx, name string) error {
	var n string
	return notFound(tx.QueryRowContext(ctx, `SELECT name FROM users WHERE name = ?`, name).Scan(&n), "user "+name)
}

// userConflict turns a uniqueness violation into ErrConflict with msg.
func userConflict(err error, format string, args ...any) error {
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return fmt.Errorf(format+": %w", append(args, errs.ErrConflict)...)
	}
	return err
}

func userAffected(res sql.Result, err error, what string) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("%s: %w", what, errs.ErrNotFound)
	}
	return nil
}
