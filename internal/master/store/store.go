// Package store is the master's desired state in an embedded SQLite
// database: nodes, apps and their revisions, replicas and the audit log,
// behind versioned schema migrations. Observed state (what runs where) is
// not here: nodes hold it and report it.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

	"github.com/moatcloud/moat/internal/errs"
)

// DB is the master's database.
type DB struct {
	db *sql.DB

	nodesMu  sync.Mutex
	nodes    []Node // cached Nodes answer; nil when stale
	nodesGen int

	// The replicas, kept in memory and written through: the reconciler
	// reads every one at every pass, and only this process writes them.
	replicasMu sync.Mutex
	replicas   map[string]Replica // by ID; nil until first read

	// Whether tenants' tables exist yet (tenants.go).
	tenancyOnce sync.Once
	tenancy     bool
	tenancyErr  error

	audit auditChain // the audit log's appending end (audit.go)
}

// migrations, in order; each runs once, in a transaction, and is recorded
// in schema_migrations. Never edit one that has shipped: add another.
// Each domain keeps its own in its file; versions are assigned here.
var migrations = []string{
	schemaV1,       // nodes, apps, revisions, replicas, audit (this file)
	auditChainV2,   // hash-chained audit log (audit.go)
	usersV3,        // users, keys, certificate authorities, roles (users.go)
	secretsV4,      // secrets' ciphertexts (secrets.go)
	tenantsV5,      // tenants of apps and nodes, quotas (tenants.go)
	linksV6,        // link keys (links.go)
	edgeCacheV7,    // the edges' shared certificate cache, sealed (edge_cache.go)
	eventsV8,       // the event log, metrics cursors per node (events.go)
	alertsV9,       // alerts, webhooks and their queued notices (alerts.go)
	poolsV10,       // pools, their sealed provider tokens (pools.go)
	poolServersV11, // pool servers, create calls, the cluster id (pool_servers.go)
}

// schemaV1 is the first schema.
const schemaV1 = `CREATE TABLE nodes (
		name     TEXT PRIMARY KEY,
		addr     TEXT NOT NULL,
		user     TEXT NOT NULL,
		host_key TEXT NOT NULL,
		labels   TEXT NOT NULL DEFAULT '{}',
		operator TEXT NOT NULL DEFAULT '{}',
		info     TEXT NOT NULL DEFAULT '{}',
		cordoned INTEGER NOT NULL DEFAULT 0,
		draining INTEGER NOT NULL DEFAULT 0,
		enrolled TEXT NOT NULL
	);
	CREATE TABLE apps (
		name     TEXT PRIMARY KEY,
		revision INTEGER NOT NULL,
		stable   INTEGER NOT NULL DEFAULT 0,
		created  TEXT NOT NULL
	);
	CREATE TABLE revisions (
		app      TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
		revision INTEGER NOT NULL,
		spec     TEXT NOT NULL,
		image    TEXT NOT NULL,
		template TEXT NOT NULL,
		cause    TEXT NOT NULL,
		status   TEXT NOT NULL,
		message  TEXT NOT NULL DEFAULT '',
		created  TEXT NOT NULL,
		PRIMARY KEY (app, revision)
	);
	CREATE TABLE replicas (
		id       TEXT PRIMARY KEY,
		app      TEXT NOT NULL,
		revision INTEGER NOT NULL,
		template TEXT NOT NULL,
		node     TEXT NOT NULL,
		desired  TEXT NOT NULL,
		note     TEXT NOT NULL DEFAULT '',
		created  TEXT NOT NULL
	);
	CREATE INDEX replicas_by_app ON replicas(app);
	CREATE INDEX replicas_by_node ON replicas(node);
	CREATE TABLE audit (
		id     INTEGER PRIMARY KEY,
		time   TEXT NOT NULL,
		actor  TEXT NOT NULL,
		action TEXT NOT NULL,
		detail TEXT NOT NULL
	);`

// reserved is the migration of a version assigned but not yet built:
// migrate stops before it, so no database records that version until
// its real migration exists.
const reserved = `SELECT 1`

// Open opens (creating) the database at path and migrates it.
func Open(path string) (*DB, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// One connection: SQLite writes one at a time anyway, and this keeps
	// every transaction serialised without busy retries.
	db.SetMaxOpenConns(1)
	d := &DB{db: db}
	if err := d.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if err := d.openAudit(context.Background(), path); err != nil {
		db.Close()
		return nil, fmt.Errorf("open the audit log of %s: %w", path, err)
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Version is the schema version the database is at.
func (d *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := d.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

func (d *DB) migrate(ctx context.Context) error {
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)`); err != nil {
		return err
	}
	have, err := d.Version(ctx)
	if err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("the database is at schema version %d, newer than this moat knows (%d): run a newer moat", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		if migrations[v-1] == reserved {
			break // not built yet: neither it nor any after it runs
		}
		err := d.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, v, now())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// tx runs f in a transaction, committing if it returns nil.
func (d *DB) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, errs.ErrNotFound)
	}
	return err
}
