package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// Node is an enrolled node as the store keeps it. Its types are the
// store's own: the operator and info columns hold them as JSON, so what
// is on disk changes only when these do (with a migration), never because
// a wire type did.
type Node struct {
	Name     string
	Addr     string // host:port the master connects to
	User     string
	HostKey  string // pinned at enrolment, in authorized_keys form
	Labels   map[string]string
	Enrolled time.Time
	Operator Access   // how the operator's ssh reached it
	Info     NodeInfo // what the node last said about itself
	Cordoned bool
	Draining bool   // cordoned, and its replicas are being moved off
	Tenant   string // whose replicas it runs (tenants.go); "" on write is the default tenant
	Shared   bool   // it runs every tenant's replicas
}

// Access is the operator column: how the operator's ssh reached the node.
type Access struct {
	Dest      string `json:"dest"`
	Port      int    `json:"port,omitempty"`
	Identity  string `json:"identity,omitempty"`
	Jump      string `json:"jump,omitempty"`
	SSHConfig string `json:"sshConfig,omitempty"`
}

// NodeInfo is the info column: the node's last report of itself.
type NodeInfo struct {
	Version       string   `json:"version"`
	Hostname      string   `json:"hostname"`
	OS            string   `json:"os"`
	Kernel        string   `json:"kernel"`
	Arch          string   `json:"arch"`
	Runc          string   `json:"runc"`
	CgroupMode    string   `json:"cgroupMode"`
	CPUs          int      `json:"cpus"`
	MemoryBytes   int64    `json:"memoryBytes"`
	DiskBytes     int64    `json:"diskBytes"`
	DiskUsedBytes int64    `json:"diskUsedBytes"`
	DiskFreeBytes int64    `json:"diskFreeBytes"`
	Root          string   `json:"root"`
	Containers    int      `json:"containers"`
	Running       int      `json:"running"`
	RequireSigned bool     `json:"requireSigned"`
	Signers       []string `json:"signers,omitempty"`
	ImageBytes    int64    `json:"imageBytes"`
	PeerFetch     bool     `json:"peerFetch"`
	Edge          bool     `json:"edge,omitempty"`
	EdgeHTTP      string   `json:"edgeHTTP,omitempty"`
	EdgeHTTPS     string   `json:"edgeHTTPS,omitempty"`
}

// PutNode adds or updates a node (cordon state is kept on update).
func (d *DB) PutNode(ctx context.Context, n Node) error {
	labels, _ := json.Marshal(n.Labels)
	op, _ := json.Marshal(n.Operator)
	info, _ := json.Marshal(n.Info)
	tenancy, err := d.tenancyReady(ctx) // outside the transaction: it holds the only connection
	if err != nil {
		return err
	}
	defer d.nodesChanged()
	return d.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO nodes (name, addr, user, host_key, labels, operator, info, enrolled)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET addr=excluded.addr, user=excluded.user, host_key=excluded.host_key,
			labels=excluded.labels, operator=excluded.operator, info=excluded.info, enrolled=excluded.enrolled`,
			n.Name, n.Addr, n.User, n.HostKey, labels, op, info, n.Enrolled.UTC().Format(time.RFC3339Nano))
		if err != nil {
			return err
		}
		return putNodeTenant(ctx, tx, n, tenancy)
	})
}

// SetNodeInfo updates what the node reported about itself.
func (d *DB) SetNodeInfo(ctx context.Context, name string, info NodeInfo) error {
	b, _ := json.Marshal(info)
	_, err := d.db.ExecContext(ctx, `UPDATE nodes SET info = ? WHERE name = ?`, b, name)
	if err != nil {
		d.nodesChanged()
		return err
	}
	// Nodes report every minute: patch the cached list rather than read
	// every node again.
	d.nodesMu.Lock()
	defer d.nodesMu.Unlock()
	d.nodesGen++
	if d.nodes != nil {
		nodes := slices.Clone(d.nodes)
		for i := range nodes {
			if nodes[i].Name == name {
				nodes[i].Info = info
			}
		}
		d.nodes = nodes
	}
	return nil
}

// SetCordon cordons (no new replicas) or uncordons a node; draining also
// moves its replicas off.
func (d *DB) SetCordon(ctx context.Context, name string, cordoned, draining bool) error {
	res, err := d.db.ExecContext(ctx, `UPDATE nodes SET cordoned = ?, draining = ? WHERE name = ?`, cordoned, draining, name)
	d.nodesChanged()
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("node %q: %w", name, errs.ErrNotFound)
	}
	return nil
}

// DeleteNode forgets a node and the replicas the master placed on it.
func (d *DB) DeleteNode(ctx context.Context, name string) error {
	defer d.nodesChanged()
	defer d.replicasChanged()
	return d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("node %q: %w", name, errs.ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM replicas WHERE node = ?`, name)
		return err
	})
}

// Nodes returns every node, by name. The reconciler asks several times a
// second and nodes rarely change, so the answer is kept until a write to
// nodes; callers must not modify what it returns.
func (d *DB) Nodes(ctx context.Context) ([]Node, error) {
	d.nodesMu.Lock()
	cached, gen := d.nodes, d.nodesGen
	d.nodesMu.Unlock()
	if cached != nil {
		return cached, nil
	}
	out, err := d.readNodes(ctx)
	if err != nil {
		return nil, err
	}
	d.nodesMu.Lock()
	if d.nodesGen == gen {
		d.nodes = out
	}
	d.nodesMu.Unlock()
	return out, nil
}

// nodesChanged drops the cached node list; a read under way when it is
// called does not store what it read.
func (d *DB) nodesChanged() {
	d.nodesMu.Lock()
	d.nodes = nil
	d.nodesGen++
	d.nodesMu.Unlock()
}

func (d *DB) readNodes(ctx context.Context) ([]Node, error) {
	q, err := d.nodeQuery(ctx, `ORDER BY name`)
	if err != nil {
		return nil, err
	}
	rows, err := d.db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Node{}
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// GetNode returns one node.
func (d *DB) GetNode(ctx context.Context, name string) (Node, error) {
	q, err := d.nodeQuery(ctx, `WHERE name = ?`)
	if err != nil {
		return Node{}, err
	}
	n, err := scanNode(d.db.QueryRowContext(ctx, q, name))
	return n, notFound(err, fmt.Sprintf("node %q", name))
}

type scanner interface{ Scan(...any) error }

func scanNode(s scanner) (Node, error) {
	var n Node
	var labels, op, info, enrolled string
	if err := s.Scan(&n.Name, &n.Addr, &n.User, &n.HostKey, &labels, &op, &info, &n.Cordoned, &n.Draining, &enrolled, &n.Tenant, &n.Shared); err != nil {
		return n, err
	}
	json.Unmarshal([]byte(labels), &n.Labels)
	json.Unmarshal([]byte(op), &n.Operator)
	json.Unmarshal([]byte(info), &n.Info)
	n.Enrolled = parseTime(enrolled)
	return n, nil
}
