package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// poolServersV11: see migrations in store.go. The servers the pool
// manager made at a provider, and the log of every create call it made.
//
// A server's row is written BEFORE the provider's create call (with no
// provider id) and its id recorded as soon as the call answers, so a
// master that dies in between still knows the name it asked for and finds
// the server by it: nothing moat creates goes unrecorded. pool_creations
// is what the loop breaker counts (one row per create call, whatever its
// outcome); cluster holds the id every server is labelled with.
const poolServersV11 = `CREATE TABLE pool_servers (
		name         TEXT PRIMARY KEY,
		pool         TEXT NOT NULL,
		provider_id  TEXT NOT NULL DEFAULT '',
		type         TEXT NOT NULL,
		region       TEXT NOT NULL,
		state        TEXT NOT NULL,
		host_key     TEXT NOT NULL DEFAULT '',
		created      INTEGER NOT NULL,
		billed_since INTEGER NOT NULL DEFAULT 0,
		last_error   TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX pool_servers_by_pool ON pool_servers(pool);
	CREATE TABLE pool_creations (
		id      INTEGER PRIMARY KEY,
		pool    TEXT NOT NULL,
		type    TEXT NOT NULL,
		region  TEXT NOT NULL,
		at      INTEGER NOT NULL,
		outcome TEXT NOT NULL
	);
	CREATE INDEX pool_creations_by_pool ON pool_creations(pool, at);
	CREATE TABLE cluster (
		id TEXT NOT NULL
	);`

// The states of a pool server, in the order of its life.
const (
	ServerCreating   = "creating"   // intent recorded; the create call may not have answered
	ServerBooting    = "booting"    // the provider accepted it (id known); waiting for Running and sshd
	ServerEnrolling  = "enrolling"  // up; host key being rotated and the node registered
	ServerReady      = "ready"      // a node of the cluster
	ServerRetiring   = "retiring"   // cordoned and draining
	ServerDestroying = "destroying" // destroy asked; the row goes once the provider says it is gone
)

// PoolServer is one server a pool manager created.
type PoolServer struct {
	Name        string // the node's name too
	Pool        string
	ProviderID  string // "" until the create call answered
	Type        string
	Region      string
	State       string
	HostKey     string // the one-time host key's public half, then the node's own
	Created     time.Time
	BilledSince time.Time // when the provider accepted it (billing starts)
	LastError   string
}

// PoolCreation is one create call of the pool manager.
type PoolCreation struct {
	ID      int64
	Pool    string
	Type    string
	Region  string
	At      time.Time
	Outcome string // "called" until the call answers, then "created", "capacity", "failed"
}

// CreationsKept bounds the creations log: the breaker counts one hour.
const CreationsKept = 24 * time.Hour

// maxLastError bounds an error kept with a server (a provider's message).
const maxLastError = 1024

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// RecordCreateIntent writes a server about to be created (state
// creating, no id) and the create call's log row, in one transaction,
// before the call is made. It returns the log row's id.
func (d *DB) RecordCreateIntent(ctx context.Context, s PoolServer, at time.Time) (int64, error) {
	var id int64
	err := d.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pool_servers (name, pool, provider_id, type, region, state, host_key, created, billed_since, last_error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.Name, s.Pool, s.ProviderID, s.Type, s.Region, s.State, s.HostKey, nanos(s.Created), nanos(s.BilledSince), bound(s.LastError))
		if err != nil {
			return fmt.Errorf("record pool server %s: %w", s.Name, err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO pool_creations (pool, type, region, at, outcome) VALUES (?, ?, ?, ?, 'called')`,
			s.Pool, s.Type, s.Region, nanos(at))
		if err != nil {
			return fmt.Errorf("log the creation of %s: %w", s.Name, err)
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// SetCreationOutcome records how a create call ended.
func (d *DB) SetCreationOutcome(ctx context.Context, id int64, outcome string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE pool_creations SET outcome = ? WHERE id = ?`, outcome, id)
	return err
}

// PutPoolServer updates a server's row (by name); it must exist.
func (d *DB) PutPoolServer(ctx context.Context, s PoolServer) error {
	res, err := d.db.ExecContext(ctx, `UPDATE pool_servers SET pool = ?, provider_id = ?, type = ?, region = ?, state = ?, host_key = ?, created = ?, billed_since = ?, last_error = ? WHERE name = ?`,
		s.Pool, s.ProviderID, s.Type, s.Region, s.State, s.HostKey, nanos(s.Created), nanos(s.BilledSince), bound(s.LastError), s.Name)
	if err != nil {
		return fmt.Errorf("update pool server %s: %w", s.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("pool server %q: %w", s.Name, errs.ErrNotFound)
	}
	return nil
}

// SwapPoolServerState moves a server from one state to another, only if
// it is in from (so a retirement and a reuse of the same node cannot both
// win); it says whether it did.
func (d *DB) SwapPoolServerState(ctx context.Context, name, from, to string) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE pool_servers SET state = ? WHERE name = ? AND state = ?`, to, name, from)
	if err != nil {
		return false, fmt.Errorf("pool server %s from %s to %s: %w", name, from, to, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeletePoolServer forgets a server: only once its provider says it is gone.
func (d *DB) DeletePoolServer(ctx context.Context, name string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM pool_servers WHERE name = ?`, name)
	return err
}

// GetPoolServer reads one server.
func (d *DB) GetPoolServer(ctx context.Context, name string) (PoolServer, error) {
	rows, err := d.db.QueryContext(ctx, poolServerSelect+` WHERE name = ?`, name)
	if err != nil {
		return PoolServer{}, err
	}
	out, err := scanPoolServers(rows)
	if err != nil {
		return PoolServer{}, err
	}
	if len(out) == 0 {
		return PoolServer{}, fmt.Errorf("pool server %q: %w", name, errs.ErrNotFound)
	}
	return out[0], nil
}

// PoolServers lists a pool's servers ("" for every pool's), oldest first.
func (d *DB) PoolServers(ctx context.Context, pool string) ([]PoolServer, error) {
	q, args := poolServerSelect+` ORDER BY created, name`, []any{}
	if pool != "" {
		q, args = poolServerSelect+` WHERE pool = ? ORDER BY created, name`, []any{pool}
	}
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return scanPoolServers(rows)
}

const poolServerSelect = `SELECT name, pool, provider_id, type, region, state, host_key, created, billed_since, last_error FROM pool_servers`

func scanPoolServers(rows *sql.Rows) ([]PoolServer, error) {
	defer rows.Close()
	var out []PoolServer
	for rows.Next() {
		var s PoolServer
		var created, billed int64
		if err := rows.Scan(&s.Name, &s.Pool, &s.ProviderID, &s.Type, &s.Region, &s.State, &s.HostKey, &created, &billed, &s.LastError); err != nil {
			return nil, err
		}
		s.Created, s.BilledSince = fromNanos(created), fromNanos(billed)
		out = append(out, s)
	}
	return out, rows.Err()
}

// PoolCreations lists a pool's create calls since a time ("" for every
// pool's), oldest first.
func (d *DB) PoolCreations(ctx context.Context, pool string, since time.Time) ([]PoolCreation, error) {
	q, args := `SELECT id, pool, type, region, at, outcome FROM pool_creations WHERE at >= ?`, []any{nanos(since)}
	if pool != "" {
		q, args = q+` AND pool = ?`, append(args, pool)
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PoolCreation
	for rows.Next() {
		var c PoolCreation
		var at int64
		if err := rows.Scan(&c.ID, &c.Pool, &c.Type, &c.Region, &at, &c.Outcome); err != nil {
			return nil, err
		}
		c.At = fromNanos(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// PrunePoolCreations drops create calls older than before.
func (d *DB) PrunePoolCreations(ctx context.Context, before time.Time) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM pool_creations WHERE at < ?`, nanos(before))
	return err
}

// ClusterID is the cluster's stable id, made once: every server a pool
// creates is labelled moat-cluster=ID, and the orphan reconciler looks
// only at servers so labelled. 12 hex digits fit every provider's label
// and tag syntax.
func (d *DB) ClusterID(ctx context.Context) (string, error) {
	var id string
	err := d.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id FROM cluster LIMIT 1`).Scan(&id)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		b := make([]byte, 6)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		id = hex.EncodeToString(b)
		_, err = tx.ExecContext(ctx, `INSERT INTO cluster (id) VALUES (?)`, id)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("the cluster's id: %w", err)
	}
	return id, nil
}

func bound(s string) string {
	if len(s) <= maxLastError {
		return s
	}
	cut := maxLastError
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
