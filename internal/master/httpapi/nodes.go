package httpapi

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/wire"
)

func (s *server) nodeRoutes(handle handleFunc) {
	handle("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) error {
		nodes, err := s.cp.Nodes(r.Context())
		return reply(w, nodes, err)
	})
	handle("POST /v1/nodes", func(w http.ResponseWriter, r *http.Request) error {
		var n masterapi.NewNode
		if err := wire.Decode(r.Body, &n); err != nil {
			return err
		}
		return replyNone(w, s.cp.RegisterNode(r.Context(), inventory.FromRegistration(n), actor(r)))
	})
	handle("DELETE /v1/nodes/{node}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, s.cp.RemoveNode(r.Context(), r.PathValue("node"), actor(r)))
	})
	for _, verb := range []string{"cordon", "uncordon", "drain"} {
		handle("POST /v1/nodes/{node}/"+verb, func(w http.ResponseWriter, r *http.Request) error {
			return replyNone(w, s.cp.Cordon(r.Context(), r.PathValue("node"), verb, actor(r)))
		})
	}
	handle("GET /v1/nodes/{node}/audit", func(w http.ResponseWriter, r *http.Request) error {
		report, err := s.cp.NodeAudit(r.Context(), r.PathValue("node"))
		return reply(w, report, err)
	})
	handle("POST /v1/nodes/{node}/dial", s.dialNode)
	handle("GET /v1/key", func(w http.ResponseWriter, r *http.Request) error {
		return reply(w, s.cp.Key(), nil)
	})
}

// dialNode pipes the client's upgraded connection to a container port
// on a node, through the node's gate (dial).
func (s *server) dialNode(w http.ResponseWriter, r *http.Request) error {
	port, err := queryPort(r)
	if err != nil {
		return err
	}
	conn, err := s.cp.DialNode(r.Context(), r.PathValue("node"), r.URL.Query().Get("container"), port)
	if err != nil {
		return err
	}
	return pipe(w, conn)
}

// dialApp pipes the client's upgraded connection to a port of one of an
// app's replicas, which the control plane picks.
func (s *server) dialApp(w http.ResponseWriter, r *http.Request) error {
	port, err := queryPort(r)
	if err != nil {
		return err
	}
	conn, err := s.cp.DialApp(r.Context(), r.PathValue("app"), port)
	if err != nil {
		return err
	}
	return pipe(w, conn)
}

func queryPort(r *http.Request) (int, error) {
	port, err := strconv.Atoi(r.URL.Query().Get("port"))
	if err != nil {
		return 0, errs.Invalid("query port", "%q is not a port", r.URL.Query().Get("port"))
	}
	return port, nil
}

// pipe upgrades the client's connection and pipes it to conn.
func pipe(w http.ResponseWriter, conn net.Conn) error {
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
