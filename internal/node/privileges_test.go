package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestPrivilegesByRole: on the master's socket a container gets what its
// image declares and what the node's operator allows, less what the
// request drops; root's socket may ask for anything.
func TestPrivilegesByRole(t *testing.T) {
	n := newNode(t, "--allow-privileges", "host-network")
	importFile(t, n, testcluster.ProbeImage(t, "probe-priv:1", "--cap", "NET_BIND_SERVICE", "--user", "0"))
	master := nodeapi.UnixClient(nodeapi.RoleSocket(n.Socket, nodeapi.RoleMaster))
	ctx := context.Background()

	t.Run("allowed by the node", func(t *testing.T) {
		r := probeReportVia(t, n, master, nodeapi.ContainerSpec{Name: "hostnet", Security: nodeapi.Security{Network: "host"}})
		if len(r.Interfaces) < 2 {
			t.Errorf("interfaces %v, want the node's", r.Interfaces)
		}
	})
	t.Run("neither declared nor allowed", func(t *testing.T) {
		_, err := master.CreateContainer(ctx, nodeapi.ContainerSpec{Name: "netadmin", Image: probeImage, Cmd: []string{"report"},
			Security: nodeapi.Security{CapAdd: []string{"NET_ADMIN"}}}, true)
		if !errors.Is(err, errs.ErrForbidden) || !strings.Contains(err.Error(), "cap:NET_ADMIN") {
			t.Errorf("create: %v; want forbidden naming cap:NET_ADMIN", err)
		}
		if _, err := n.Client.Container(ctx, "netadmin"); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("the refused container exists: %v", err)
		}
	})
	t.Run("declared, and dropped", func(t *testing.T) {
		r := probeReportVia(t, n, master, nodeapi.ContainerSpec{Name: "declared", Image: "probe-priv:1"})
		if r.UID != 0 || r.CapEff != "0000000000000400" {
			t.Errorf("declared: uid %d caps %s, want 0 and NET_BIND_SERVICE", r.UID, r.CapEff)
		}
		r = probeReportVia(t, n, master, nodeapi.ContainerSpec{Name: "dropped", Image: "probe-priv:1",
			Security: nodeapi.Security{Drop: []string{"cap:NET_BIND_SERVICE", "root"}}})
		if r.UID != 65534 || r.CapEff != "0000000000000000" {
			t.Errorf("dropped: uid %d caps %s, want nobody without capabilities", r.UID, r.CapEff)
		}
	})
	t.Run("contradictions and unknown names", func(t *testing.T) {
		for name, sec := range map[string]nodeapi.Security{
			"drop-and-ask": {Drop: []string{"host-network"}, Network: "host"},
			"unknown":      {Drop: []string{"everything"}},
			"not-a-cap":    {CapAdd: []string{"FLY"}},
		} {
			_, err := master.CreateContainer(ctx, nodeapi.ContainerSpec{Name: name, Image: probeImage, Security: sec}, true)
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("%s: %v; want invalid", name, err)
			}
		}
		if _, err := master.CreateContainer(ctx, nodeapi.ContainerSpec{Name: "root-dropped", Image: "probe-priv:1", User: "0",
			Security: nodeapi.Security{Drop: []string{"root"}}}, true); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("user 0 with root dropped: %v; want invalid", err)
		}
	})
	t.Run("root on the node asks for anything", func(t *testing.T) {
		r := probeReportVia(t, n, n.Client, nodeapi.ContainerSpec{Name: "operator", Security: nodeapi.Security{CapAdd: []string{"NET_ADMIN"}}})
		if r.CapEff != "0000000000001000" {
			t.Errorf("root's request: caps %s, want NET_ADMIN", r.CapEff)
		}
	})
}

// probeReportVia is probeReport with the container created by client.
func probeReportVia(t *testing.T, n *testcluster.Node, client *nodeapi.Client, spec nodeapi.ContainerSpec) report {
	t.Helper()
	if spec.Image == "" {
		spec.Image = probeImage
	}
	spec.Cmd = []string{"report"}
	c, err := client.CreateContainer(context.Background(), spec, true)
	if err != nil {
		t.Fatalf("create %s: %v", spec.Name, err)
	}
	return reportOf(t, n, c.ID)
}
