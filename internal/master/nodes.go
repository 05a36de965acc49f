package master

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/wire"
)

func (m *Master) nodeRoutes(handle handleFunc) {
	handle("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) error {
		nodes, err := m.Nodes(r.Context())
		return reply(w, nodes, err)
	})
	handle("POST /v1/nodes", func(w http.ResponseWriter, r *http.Request) error {
		var n inventory.Node
		if err := wire.Decode(r.Body, &n); err != nil {
			return err
		}
		return replyNone(w, m.RegisterNode(r.Context(), n, actor(r)))
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
		return reply(w, masterapi.Key{AuthorizedKey: sshx.AuthorizedKey(m.key.PublicKey()),
			PeerAuthorizedKey: sshx.AuthorizedKey(m.peer.PublicKey()), PeerKey: string(m.peerPEM)}, nil)
	})
}

// RegisterNode adds an enrolled node (moat node add) and starts watching it.
func (m *Master) RegisterNode(ctx context.Context, n inventory.Node, actor string) error {
	if _, err := n.Target(); err != nil {
		return errs.Invalid("hostKey", "%v", err)
	}
	if err := m.db.PutNode(ctx, n); err != nil {
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

// handleAppDial dials a ready replica of an app, picked at random.
func (m *Master) handleAppDial(w http.ResponseWriter, r *http.Request) error {
	port, err := strconv.Atoi(r.URL.Query().Get("port"))
	if err != nil {
		return errs.Invalid("query port", "%q is not a port", r.URL.Query().Get("port"))
	}
	if err := m.checkAppPort(r.Context(), r.PathValue("app"), port); err != nil {
		return err
	}
	reps, err := m.Replicas(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	var ready []masterapi.Replica
	for _, rep := range reps {
		if rep.State == "ready" && rep.Desired == "run" {
			ready = append(ready, rep)
		}
	}
	if len(ready) == 0 {
		return fmt.Errorf("app %q has no ready replica: %w", r.PathValue("app"), errs.ErrUnavailable)
	}
	rep := ready[rand.IntN(len(ready))]
	return m.splice(w, r, rep.Node, rep.ID, port)
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

// splice upgrades the client's connection and pipes it to the port.
func (m *Master) splice(w http.ResponseWriter, r *http.Request, node, container string, port int) error {
	a := m.agent(node)
	if a == nil {
		return fmt.Errorf("node %q: %w", node, errs.ErrNotFound)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	conn, err := a.conn.Dial(ctx, container, port)
	if err != nil {
		return err
	}
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
