package store

import (
	"context"
	"time"
)

// linksV6: see migrations in store.go. One key pair per link (source app →
// target app:port). Nodes running the source get the private key; nodes
// running the target pin the public key to `moat gate --as link`, which
// opens that link and nothing else. The master holds the private key: it
// grants no more than it has, since its own key may dial any declared
// port. A link's key is deleted when the link goes, so a link made again
// gets a new one.
const linksV6 = `CREATE TABLE link_keys (
		id      TEXT PRIMARY KEY,
		private BLOB NOT NULL,
		public  TEXT NOT NULL,
		created TEXT NOT NULL
	);`

// LinkKey is a link's key pair: Private in OpenSSH PEM form, Public in
// authorized_keys form.
type LinkKey struct {
	ID      string
	Private []byte
	Public  string
	Created time.Time
}

// LinkKeys lists every link's key.
func (d *DB) LinkKeys(ctx context.Context) ([]LinkKey, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, private, public, created FROM link_keys ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LinkKey
	for rows.Next() {
		var k LinkKey
		var created string
		if err := rows.Scan(&k.ID, &k.Private, &k.Public, &created); err != nil {
			return nil, err
		}
		k.Created = parseTime(created)
		out = append(out, k)
	}
	return out, rows.Err()
}

// PutLinkKey stores a link's key, keeping one already there: two passes
// making the same link's key at once agree on the first.
func (d *DB) PutLinkKey(ctx context.Context, k LinkKey) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO link_keys (id, private, public, created) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		k.ID, k.Private, k.Public, now())
	return err
}

// DeleteLinkKey forgets a link's key.
func (d *DB) DeleteLinkKey(ctx context.Context, id string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM link_keys WHERE id = ?`, id)
	return err
}
