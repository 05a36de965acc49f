package master

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
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
	"github.com/moatcloud/moat/internal/wire"
)

func (m *Master) nodeRoutes(handle handleFunc) {
	handle("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) error {
		nodes, err := m.Nodes(r.Context())
		return reply(w, nodes, err)
	})
	handle("POST /v1/nodes", func(w http.ResponseWriter, r *http.Request) error {
		var n masterapi.NewNode
		if err := wire.Decode(r.Body, &n); err != nil {
			return err
		}
		return replyNone(w, m.RegisterNode(r.Context(), inventory.FromRegistration(n), actor(r)))
	})
	handle("DELETE /v1/nodes/{node}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, m.RemoveNode(r.Context(), r.PathValue("node"), actor(r)))
	})
	for _, verb := range []string{"cordon", "uncordon", "drain"} {
		handle("POST /v1/nodes/{node}/"+verb, func(w http.ResponseWriter, r *http.Request) error {
			return replyNone(w, m.Cordon(r.Context(), r.PathValue("node"), verb, actor(r)))
		})
	}
	handle("GET /v1/nodes/{node}/audit", func(w http.ResponseWriter, r *http.Request) error {
		a := m.agent(r.PathValue("node"))
		if a == nil {
			return fmt.Errorf("node %q: %w", r.PathValue("node"), errs.ErrNotFound)
		}
		// Asking a node that is not up would wait out the caller's
		// deadline: say so at once instead.
		if state, since, err := a.conn.State(); state != sshx.Up {
			return fmt.Errorf("node %s is %s (since %s, %v): its audit needs it reachable: %w",
				a.name, state, since.Format(time.RFC3339), err, errs.ErrUnavailable)
		}
		report, err := a.api.Audit(r.Context())
		return reply(w, report, err)
	})
	handle("POST /v1/nodes/{node}/dial", m.handleDial)
	handle("POST /v1/apps/{app}/dial", m.handleAppDial)
	handle("GET /v1/key", func(w http.ResponseWriter, r *http.Request) error {
		return reply(w, masterapi.Key{AuthorizedKey: sshkey.AuthorizedKey(m.key.PublicKey()),
			PeerAuthorizedKey: sshkey.AuthorizedKey(m.peer.PublicKey()), PeerKey: string(m.peerPEM)}, nil)
	})
}

// RegisterNode adds an enrolled node (moat node add) and starts watching it.
func (m *Master) RegisterNode(ctx context.Context, n inventory.Node, actor string) error {
	if _, err := n.Target(); err != nil {
		return errs.Invalid("hostKey", "%v", err)
	}
	if err := m.db.PutNode(ctx, nodeRow(n)); err != nil {
		return err
	}
	stored, err := m.db.GetNode(ctx, n.Name)
	if err != nil {
		return err
	}
	m.db.Audit(ctx, actor, "node add", n.Name+" "+n.Addr)
	m.kickReconcile()
	return m.startAgent(stored)
}

// RemoveNode forgets a node: its replicas are replaced elsewhere.
func (m *Master) RemoveNode(ctx context.Context, name, actor string) error {
	if err := m.db.DeleteNode(ctx, name); err != nil {
		return err
	}
	m.stopAgent(name)
	m.db.Audit(ctx, actor, "node rm", name)
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
	m.db.Audit(ctx, actor, "node "+verb, name)
	m.kickReconcile()
	return nil
}

// handleDial pipes the client's upgraded connection to a container port
// on a node, through the node's gate (dial).
func (m *Master) handleDial(w http.ResponseWriter, r *http.Request) error {
	port, err := strconv.Atoi(r.URL.Query().Get("port"))
	if err != nil {
		return errs.Invalid("query port", "%q is not a port", r.URL.Query().Get("port"))
	}
	return m.splice(w, r, r.PathValue("node"), r.URL.Query().Get("container"), port)
}

// handleAppDial dials a ready replica of an app whose node is up, picked
// at random; when opening fails it tries the next one.
func (m *Master) handleAppDial(w http.ResponseWriter, r *http.Request) error {
	app := r.PathValue("app")
	port, err := strconv.Atoi(r.URL.Query().Get("port"))
	if err != nil {
		return errs.Invalid("query port", "%q is not a port", r.URL.Query().Get("port"))
	}
	if err := m.checkAppPort(r.Context(), app, port); err != nil {
		return err
	}
	reps, err := m.Replicas(r.Context(), app)
	if err != nil {
		return err
	}
	var tried []string
	for _, rep := range dialOrder(reps, m.nodeUp) {
		conn, err := m.openDial(r.Context(), rep.Node, rep.ID, port)
		if err == nil {
			return m.pipe(w, conn)
		}
		tried = append(tried, fmt.Sprintf("replica %s on node %s: %v", rep.ID, rep.Node, err))
	}
	if len(tried) == 0 {
		return fmt.Errorf("app %q has no ready replica on a node that is up: %w", app, errs.ErrUnavailable)
	}
	return fmt.Errorf("no ready replica of %s could be reached: %s: %w", app, strings.Join(tried, "; "), errs.ErrUnavailable)
}

// dialOrder is the order to try an app's replicas in: the ready ones on
// nodes that are up, shuffled so load spreads. Pure but for the shuffle.
func dialOrder(reps []masterapi.Replica, up func(node string) bool) []masterapi.Replica {
	var out []masterapi.Replica
	for _, rep := range reps {
		if rep.State == "ready" && rep.Desired == "run" && up(rep.Node) {
			out = append(out, rep)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
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
	a, err := m.db.GetApp(ctx, app)
	if err != nil {
		return err
	}
	rev, err := m.db.GetRevision(ctx, app, a.Revision)
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

// openDial opens a dial session to a container port on a node, giving up
// after dialAttempt; a session that opens after that is closed.
func (m *Master) openDial(ctx context.Context, node, container string, port int) (net.Conn, error) {
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

// splice pipes the client's upgraded connection to a container port.
func (m *Master) splice(w http.ResponseWriter, r *http.Request, node, container string, port int) error {
	conn, err := m.openDial(r.Context(), node, container, port)
	if err != nil {
		return err
	}
	return m.pipe(w, conn)
}

// pipe upgrades the client's connection and pipes it to conn.
func (m *Master) pipe(w http.ResponseWriter, conn net.Conn) error {
	defer conn.Close()
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return err
	}
	defer client.Close()
	fmt.Fprintf(client, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", nodeapi.UpgradeProtocol)
	go func() {
		io.Copy(conn, brw)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	io.Copy(client, conn)
	return nil
}
