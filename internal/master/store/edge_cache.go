package store

import (
	"context"
	"time"
)

// edgeCacheV7: see migrations in store.go. The edges' shared certificate
// cache, as the master carries it between edges: per cache key ID (edges
// whose key is the same) and name hash, the sealed entry, which the
// master cannot open (the key is the operator's, on the edges only), and
// a version that orders changes. A deletion is sealed too (its first
// byte 3, see internal/edge): its row stays a day, so an edge that was
// away hears of it.
const edgeCacheV7 = `CREATE TABLE edge_cache (
		key_id  TEXT NOT NULL,
		hash    TEXT NOT NULL,
		data    BLOB NOT NULL,
		version INTEGER NOT NULL,
		updated TEXT NOT NULL,
		PRIMARY KEY (key_id, hash)
	);`

// EdgeCacheEntry is one sealed entry of the edges' cache, or a sealed
// deletion.
type EdgeCacheEntry struct {
	KeyID   string
	Hash    string
	Data    []byte
	Version int64
	Updated time.Time
}

// edgeTombstoneTTL is how long a deletion is remembered.
const edgeTombstoneTTL = 24 * time.Hour

// PutEdgeCacheEntry records an entry's change as the newest version,
// and forgets deletions older than a day.
func (d *DB) PutEdgeCacheEntry(ctx context.Context, keyID, hash string, data []byte) (int64, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var v int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM edge_cache`).Scan(&v); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO edge_cache (key_id, hash, data, version, updated) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key_id, hash) DO UPDATE SET data = excluded.data, version = excluded.version, updated = excluded.updated`,
		keyID, hash, data, v, now()); err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-edgeTombstoneTTL).UTC().Format(time.RFC3339Nano)
	if _, err := tx.ExecContext(ctx, `DELETE FROM edge_cache WHERE substr(data, 1, 1) = x'03' AND updated < ?`, cutoff); err != nil {
		return 0, err
	}
	return v, tx.Commit()
}

// EdgeCacheEntries lists the entries of one cache key ID, oldest change
// first (deletions included).
func (d *DB) EdgeCacheEntries(ctx context.Context, keyID string) ([]EdgeCacheEntry, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT hash, data, version, updated FROM edge_cache WHERE key_id = ? ORDER BY version`, keyID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []EdgeCacheEntry
	for rows.Next() {
		e := EdgeCacheEntry{KeyID: keyID}
		var updated string
		if err := rows.Scan(&e.Hash, &e.Data, &e.Version, &updated); err != nil {
			return nil, err
		}
		e.Updated = parseTime(updated)
		out = append(out, e)
	}
	return out, rows.Err()
}
