package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// alertsV9: see migrations in store.go. Alerts, one row per instance
// (resolved ” while it fires: at most one such row per key), so that a
// master restarted neither forgets what fires nor sends it again; the
// webhooks notices go to; and the notices not yet delivered to each, in
// order (the outbox), so that a webhook that was down receives them when
// it is back.
const alertsV9 = `CREATE TABLE alerts (
		id       INTEGER PRIMARY KEY AUTOINCREMENT,
		key      TEXT NOT NULL,
		data     TEXT NOT NULL,
		fired    TEXT NOT NULL,
		resolved TEXT NOT NULL DEFAULT ''
	);
	CREATE UNIQUE INDEX alerts_firing ON alerts(key) WHERE resolved = '';
	CREATE INDEX alerts_by_resolved ON alerts(resolved);
	CREATE TABLE alert_webhooks (
		name    TEXT PRIMARY KEY,
		url     TEXT NOT NULL,
		created TEXT NOT NULL
	);
	CREATE TABLE alert_outbox (
		seq     INTEGER PRIMARY KEY AUTOINCREMENT,
		webhook TEXT NOT NULL REFERENCES alert_webhooks(name) ON DELETE CASCADE,
		body    BLOB NOT NULL,
		created TEXT NOT NULL
	);
	CREATE INDEX alert_outbox_by_webhook ON alert_outbox(webhook, seq);`

// Bounds of what alerts keep.
const (
	// MaxQueuedNotices per webhook: past it the oldest are dropped (a
	// webhook gone for weeks must not fill the disk).
	MaxQueuedNotices = 10000
	// ResolvedAlertsKept: resolved alerts are kept a day, and at most
	// this many.
	ResolvedAlertsKept = 1000
	resolvedAlertsTTL  = 24 * time.Hour
)

// AlertRow is one alert instance as stored: Data is the alert as the
// master describes it (JSON).
type AlertRow struct {
	ID       int64
	Key      string
	Data     []byte
	Fired    time.Time
	Resolved time.Time // zero while it fires
}

// Webhook is where alert notices go.
type Webhook struct {
	Name    string
	URL     string
	Created time.Time
}

// FireAlert records a new alert instance of key, and queues its notice
// for every webhook, in one transaction. describe is given the instance's ID
// and returns the alert's data and the notice's body.
func (d *DB) FireAlert(ctx context.Context, key string, describe func(id int64) (data, notice []byte)) (int64, error) {
	var id int64
	err := d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO alerts (key, data, fired) VALUES (?, '', ?)`, key, now())
		if err != nil {
			return fmt.Errorf("alert %s: %w", key, err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		data, notice := describe(id)
		if _, err := tx.ExecContext(ctx, `UPDATE alerts SET data = ? WHERE id = ?`, string(data), id); err != nil {
			return err
		}
		return queueNotice(ctx, tx, notice)
	})
	return id, err
}

// ResolveAlert marks an alert instance resolved with its final data, and
// queues its notice for every webhook, in one transaction; resolved
// alerts past a day (or ResolvedAlertsKept) are forgotten.
func (d *DB) ResolveAlert(ctx context.Context, id int64, data, notice []byte) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE alerts SET data = ?, resolved = ? WHERE id = ? AND resolved = ''`, string(data), now(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // resolved already: no second notice
		}
		cutoff := time.Now().Add(-resolvedAlertsTTL).UTC().Format(time.RFC3339Nano)
		if _, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE resolved != '' AND (resolved < ? OR id NOT IN
			(SELECT id FROM alerts WHERE resolved != '' ORDER BY id DESC LIMIT ?))`, cutoff, ResolvedAlertsKept); err != nil {
			return err
		}
		return queueNotice(ctx, tx, notice)
	})
}

// queueNotice adds a notice to every webhook's queue, dropping the
// oldest past MaxQueuedNotices.
func queueNotice(ctx context.Context, tx *sql.Tx, body []byte) error {
	t := now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO alert_outbox (webhook, body, created) SELECT name, ?, ? FROM alert_webhooks`, body, t); err != nil {
		return fmt.Errorf("queue alert notice: %w", err)
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM alert_outbox WHERE seq IN (SELECT seq FROM (SELECT seq,
		ROW_NUMBER() OVER (PARTITION BY webhook ORDER BY seq DESC) AS n FROM alert_outbox) WHERE n > ?)`, MaxQueuedNotices)
	return err
}

// Alerts returns the alerts firing (resolved zero) and those resolved
// since, oldest first.
func (d *DB) Alerts(ctx context.Context, since time.Time) ([]AlertRow, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, key, data, fired, resolved FROM alerts WHERE resolved = '' OR resolved >= ? ORDER BY id`,
		since.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AlertRow
	for rows.Next() {
		var r AlertRow
		var data, fired, resolved string
		if err := rows.Scan(&r.ID, &r.Key, &data, &fired, &resolved); err != nil {
			return nil, err
		}
		r.Data, r.Fired = []byte(data), parseTime(fired)
		if resolved != "" {
			r.Resolved = parseTime(resolved)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AddWebhook adds a webhook; its URL must be http or https.
func (d *DB) AddWebhook(ctx context.Context, name, rawURL string) (Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Webhook{}, errs.Invalid("url", "%q: want an http:// or https:// URL", rawURL)
	}
	w := Webhook{Name: name, URL: rawURL}
	t := now()
	if _, err := d.db.ExecContext(ctx, `INSERT INTO alert_webhooks (name, url, created) VALUES (?, ?, ?)`, name, rawURL, t); err != nil {
		var n int
		if d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM alert_webhooks WHERE name = ?`, name).Scan(&n) == nil && n > 0 {
			return Webhook{}, fmt.Errorf("webhook %q exists: %w", name, errs.ErrConflict)
		}
		return Webhook{}, err
	}
	w.Created = parseTime(t)
	return w, nil
}

// RemoveWebhook removes a webhook and the notices queued for it.
func (d *DB) RemoveWebhook(ctx context.Context, name string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM alert_webhooks WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("webhook %q: %w", name, errs.ErrNotFound)
	}
	return nil
}

// Webhooks returns the webhooks, by name, and how many notices each has
// queued.
func (d *DB) Webhooks(ctx context.Context) ([]Webhook, map[string]int, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT name, url, created, (SELECT COUNT(*) FROM alert_outbox o WHERE o.webhook = w.name) FROM alert_webhooks w ORDER BY name`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out []Webhook
	queued := map[string]int{}
	for rows.Next() {
		var w Webhook
		var created string
		var n int
		if err := rows.Scan(&w.Name, &w.URL, &created, &n); err != nil {
			return nil, nil, err
		}
		w.Created = parseTime(created)
		queued[w.Name] = n
		out = append(out, w)
	}
	return out, queued, rows.Err()
}

// NextNotice returns the oldest notice queued for a webhook (ok false
// when none).
func (d *DB) NextNotice(ctx context.Context, webhook string) (seq int64, body []byte, ok bool, err error) {
	err = d.db.QueryRowContext(ctx, `SELECT seq, body FROM alert_outbox WHERE webhook = ? ORDER BY seq LIMIT 1`, webhook).Scan(&seq, &body)
	if err == sql.ErrNoRows {
		return 0, nil, false, nil
	}
	return seq, body, err == nil, err
}

// DeleteNotice forgets a delivered notice.
func (d *DB) DeleteNotice(ctx context.Context, seq int64) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM alert_outbox WHERE seq = ?`, seq)
	return err
}
