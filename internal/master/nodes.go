package master

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
)

// NodeAudit asks a node what it exposes (moat node audit). A node that
// is not up is refused at once: asking would wait out the caller's
// deadline.
func (m *Master) NodeAudit(ctx context.Context, name string) (nodeapi.AuditReport, error) {
	a := m.agent(name)
	if a == nil {
		return nodeapi.AuditReport{}, fmt.Errorf("node %q: %w", name, errs.ErrNotFound)
	}
	if state, since, err := a.conn.State(); state != sshx.Up {
		return nodeapi.AuditReport{}, fmt.Errorf("node %s is %s (since %s, %v): its audit needs it reachable: %w",
			a.name, state, since.Format(time.RFC3339), err, errs.ErrUnavailable)
	}
	return a.api.Audit(ctx)
}

// Key returns what moat node add installs on a node: the master's public
// key, and the peer key nodes read each other's blobs with.
func (m *Master) Key() masterapi.Key {
	return masterapi.Key{AuthorizedKey: sshkey.AuthorizedKey(m.key.PublicKey()),
		PeerAuthorizedKey: sshkey.AuthorizedKey(m.peer.PublicKey()), PeerKey: string(m.peerPEM)}
}

// RegisterNode adds an enrolled node (moat node add) and starts watching it.
func (m *Master) RegisterNode(ctx context.Context, n inventory.Node, actor string) error {
	if _, err := n.Target(); err != nil {
		return errs.Invalid("hostKey", "%v", err)
	}
	if err := m.checkNodePool(ctx, n.Name, n.Labels); err != nil {
		return err
	}
	row := nodeRow(n)
	if row.Tenant == "" {
		row.Tenant = callerTenant(ctx)
	}
	if err := m.registerNode(ctx, row); err != nil {
		return err
	}
	stored, err := m.db.GetNode(ctx, n.Name)
	if err != nil {
		return err
	}
	m.log.Info("node added", "node", n.Name, "addr", n.Addr, "by", actor)
	m.kickReconcile()
	return m.startAgent(stored)
}

// RemoveNode forgets a node: its replicas are replaced elsewhere.
func (m *Master) RemoveNode(ctx context.Context, name, actor string) error {
	if err := m.db.DeleteNode(ctx, name); err != nil {
		return err
	}
	m.stopAgent(name)
	m.removeMetrics("node", name)
	m.forgetMetricsCursor(ctx, name)
	m.log.Info("node removed", "node", name, "by", actor)
	m.kickReconcile()
	return nil
}

// Cordon stops placing replicas on a node; drain also moves its replicas
// off, under each app's update rules; uncordon undoes both.
func (m *Master) Cordon(ctx context.Context, name, verb, actor string) error {
	cordoned, draining := verb != "uncordon", verb == "drain"
	if err := m.db.SetCordon(ctx, name, cordoned, draining); err != nil {
		return err
	}
	m.log.Info("node "+verb, "node", name, "by", actor)
	m.kickReconcile()
	return nil
}

// DialApp opens a connection to a port of one of an app's replicas that
// take new connections (dialPool), the least busy first (balanceOrder);
// when opening fails it tries the next one. The connection counts against
// its replica until it is closed.
func (m *Master) DialApp(ctx context.Context, app string, port int) (net.Conn, error) {
	if err := m.checkAppPort(ctx, app, port); err != nil {
		return nil, err
	}
	w, err := m.look(ctx)
	if err != nil {
		return nil, err
	}
	var tried []string
	for i, t := range m.dials.order(dialPool(w, appKey(ctx, app))) {
		if i > 0 {
			m.dials.add(t.ID, 1) // order counted the first
		}
		conn, err := m.DialNode(ctx, t.Node, t.ID, port)
		if err == nil {
			return m.dials.held(conn, t.ID), nil
		}
		m.dials.add(t.ID, -1)
		tried = append(tried, fmt.Sprintf("replica %s on node %s: %v", t.ID, t.Node, err))
	}
	if len(tried) == 0 {
		return nil, fmt.Errorf("app %q has no ready replica on a node that is up: %w", app, errs.ErrUnavailable)
	}
	return nil, fmt.Errorf("no ready replica of %s could be reached: %s: %w", app, strings.Join(tried, "; "), errs.ErrUnavailable)
}

// nodeUp says whether the master's connection to a node is up.
func (m *Master) nodeUp(node string) bool {
	a := m.agent(node)
	if a == nil {
		return false
	}
	state, _, _ := a.conn.State()
	return state == sshx.Up
}

// checkAppPort refuses, before anything is dialled, a port the app's
// current revision does not declare (the node's gate would refuse it too,
// but only once the connection is up, with less to say).
func (m *Master) checkAppPort(ctx context.Context, app string, port int) error {
	a, err := m.db.GetApp(ctx, appKey(ctx, app))
	if err != nil {
		return err
	}
	rev, err := m.db.GetRevision(ctx, a.Name, a.Revision)
	if err != nil {
		return err
	}
	var sp spec.App
	if err := json.Unmarshal(rev.Spec, &sp); err != nil {
		return err
	}
	var declared []string
	for _, p := range sp.Ports {
		if p.Port == port && p.Protocol != spec.ProtoUDP {
			return nil
		}
		if p.Protocol != spec.ProtoUDP {
			declared = append(declared, strconv.Itoa(p.Port))
		}
	}
	if len(declared) == 0 {
		return errs.Invalid("port", "app %q declares no TCP port", app)
	}
	return errs.Invalid("port", "app %q does not declare port %d (it declares %s)", app, port, strings.Join(declared, ", "))
}

// dialAttempt bounds one attempt to open a dial session: a healthy node
// answers in milliseconds, and one that is dying would hold the attempt
// until its keepalives give up.
const dialAttempt = 2 * time.Second

// DialNode opens a connection to a container port on a node, through
// the node's gate (a dial session), giving up after dialAttempt; a session
// that opens after that is closed.
func (m *Master) DialNode(ctx context.Context, node, container string, port int) (net.Conn, error) {
	a := m.agent(node)
	if a == nil {
		return nil, fmt.Errorf("node %q: %w", node, errs.ErrNotFound)
	}
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		conn, err := a.conn.Dial(ctx, container, port)
		ch <- result{conn, err}
	}()
	select {
	case r := <-ch:
		return r.conn, r.err
	case <-time.After(dialAttempt):
	case <-ctx.Done():
	}
	go func() {
		if r := <-ch; r.conn != nil {
			r.conn.Close()
		}
	}()
	return nil, fmt.Errorf("node %s did not open a session within %s: %w", node, dialAttempt, errs.ErrUnavailable)
}
