package master

import (
	"context"
	"fmt"

	"github.com/pkg/sftp"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshx"
)

// deliveryNodes is how image delivery (package delivery) reaches nodes:
// through their agents, and their registration in the database.
type deliveryNodes struct{ m *Master }

func (n deliveryNodes) API(node string) *nodeapi.Client {
	if a := n.m.agent(node); a != nil {
		return a.api
	}
	return nil
}

func (n deliveryNodes) SFTP(ctx context.Context, node string, opts ...sftp.ClientOption) (*sftp.Client, error) {
	a := n.m.agent(node)
	if a == nil {
		return nil, fmt.Errorf("node %s: %w", node, errs.ErrNotFound)
	}
	return a.conn.SFTP(ctx, opts...)
}

func (n deliveryNodes) Up(node string) bool {
	a := n.m.agent(node)
	if a == nil {
		return false
	}
	state, _, _ := a.conn.State()
	return state == sshx.Up
}

func (n deliveryNodes) PeerFetch(node string) bool {
	nodes, err := n.m.db.Nodes(n.m.ctx)
	if err != nil {
		return false
	}
	for _, x := range nodes {
		if x.Name == node {
			return x.Info.PeerFetch
		}
	}
	return false
}

func (n deliveryNodes) Peer(ctx context.Context, node string) (nodeapi.Peer, error) {
	x, err := n.m.db.GetNode(ctx, node)
	if err != nil {
		return nodeapi.Peer{}, err
	}
	return nodeapi.Peer{Name: x.Name, Addr: x.Addr, User: x.User, HostKey: x.HostKey}, nil
}

func (n deliveryNodes) ImagesChanged(node string) {
	if a := n.m.agent(node); a != nil {
		a.imagesChanged()
	}
}
