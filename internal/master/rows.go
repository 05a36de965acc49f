package master

import (
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// The store keeps nodes in types of its own (package store says why);
// these convert between them and the enrolment record and wire types.

func nodeRow(n inventory.Node) store.Node {
	return store.Node{Name: n.Name, Addr: n.Addr, User: n.User, HostKey: n.HostKey, Labels: n.Labels, Enrolled: n.Enrolled,
		Operator: store.Access(n.Operator), Info: infoRow(n.Info), Tenant: n.Tenant, Shared: n.Shared}
}

func enrolled(n store.Node) inventory.Node {
	return inventory.Node{Name: n.Name, Addr: n.Addr, User: n.User, HostKey: n.HostKey, Labels: n.Labels, Enrolled: n.Enrolled,
		Operator: inventory.Access(n.Operator), Info: nodeInfo(n.Info), Tenant: n.Tenant, Shared: n.Shared}
}

func infoRow(i nodeapi.NodeInfo) store.NodeInfo { return store.NodeInfo(i) }

func nodeInfo(i store.NodeInfo) nodeapi.NodeInfo { return nodeapi.NodeInfo(i) }
