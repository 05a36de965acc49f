package cli

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/quantity"
	"github.com/moatcloud/moat/internal/sshkey"
)

func fingerprint(authorizedKey string) string {
	key, err := sshkey.ParsePublicKey(authorizedKey)
	if err != nil {
		return "(unreadable)"
	}
	return ssh.FingerprintSHA256(key)
}

func (a *app) nodeLsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List nodes: reachable, cordoned, replicas, allocated resources",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nodes, err := a.masterClient().Nodes(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, nodes)
			}
			rows := [][]string{{"NAME", "TENANT", "ADDRESS", "STATE", "SINCE", "REPLICAS", "CPU", "MEMORY", "DISK USED", "IMAGES", "EDGE", "LABELS"}}
			for _, n := range nodes {
				state := n.State
				if n.Draining {
					state += ",draining"
				} else if n.Cordoned {
					state += ",cordoned"
				}
				rows = append(rows, []string{n.Name, nodeTenant(n), n.Addr, state, ago(n.Since, time.Now()), fmt.Sprint(n.Replicas),
					fmt.Sprintf("%dm/%d", n.MilliCPU, n.Info.CPUs*1000),
					quantity.FormatBytes(n.Memory) + "/" + quantity.FormatBytes(n.Info.MemoryBytes),
					diskUsed(n.Info),
					quantity.FormatBytes(n.Info.ImageBytes), edgePorts(n.Info), labelString(n.Labels)})
			}
			return table(a.stdout, rows)
		},
	}
}

// edgePorts is where an edge node serves ingress (its operator's
// edge=true), "-" on other nodes.
func edgePorts(i nodeapi.NodeInfo) string {
	if !i.Edge {
		return "-"
	}
	return strings.Join(slices.DeleteFunc([]string{i.EdgeHTTP, i.EdgeHTTPS}, func(s string) bool { return s == "" }), ",")
}

// diskUsed is what df shows: used of usable, where usable is used plus
// available (blocks reserved for root count in neither), so that
// used/usable is df's Use%.
func diskUsed(i nodeapi.NodeInfo) string {
	if i.DiskUsedBytes == 0 || i.DiskBytes == 0 {
		return "-" // a node from before diskUsedBytes, or none reported yet
	}
	return quantity.FormatBytes(i.DiskUsedBytes) + "/" + quantity.FormatBytes(i.DiskUsedBytes+i.DiskFreeBytes)
}

func labelString(l map[string]string) string {
	var parts []string
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// findNode is a node as the master knows it.
func findNode(nodes []masterapi.Node, name string) (masterapi.Node, bool) {
	for _, n := range nodes {
		if n.Name == name {
			return n, true
		}
	}
	return masterapi.Node{}, false
}

func (a *app) nodeRmCommand() *cobra.Command {
	var purge bool
	var sshOpts []string
	cmd := &cobra.Command{
		Use:   "rm [--purge] NODE",
		Short: "Reverse an enrolment: stop the node's containers and daemon, remove the master's key and moat",
		Long: `Reverse an enrolment over your own SSH access (as node add reached it):
stop the node's containers and daemon, remove the master's key, the service
and /usr/local/bin/moat, and forget the node (its replicas are placed
elsewhere). --purge also deletes /var/lib/moat (images, logs).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := a.masterClient()
			nodes, err := c.Nodes(ctx)
			if err != nil {
				return err
			}
			n, ok := findNode(nodes, args[0])
			if !ok {
				return fmt.Errorf("node %q is not enrolled", args[0])
			}
			key, err := c.Key(ctx)
			if err != nil {
				return err
			}
			pub, err := sshkey.ParsePublicKey(key.AuthorizedKey)
			if err != nil {
				return err
			}
			var extra []string
			for _, o := range sshOpts {
				extra = append(extra, "-o", o)
			}
			node := inventory.Node{Name: n.Name, Addr: n.Addr, User: n.User, HostKey: n.HostKey, Operator: inventory.Access(n.Operator)}
			log := func(step string) { fmt.Fprintln(a.stderr, "  "+step) }
			if err := enroll.Remove(ctx, node, pub, extra, purge, log); err != nil {
				return fmt.Errorf("remove node %s: %w", n.Name, err)
			}
			if err := c.RemoveNode(ctx, n.Name); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, n.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the node's data: images, containers, logs, settings")
	cmd.Flags().StringArrayVarP(&sshOpts, "ssh-option", "o", nil, "extra ssh option (repeatable)")
	return cmd
}

func (a *app) nodeVerbCommand(verb, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NODE",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.masterClient().NodeVerb(cmd.Context(), args[0], verb); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, args[0])
			return nil
		},
	}
}
