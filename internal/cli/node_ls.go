package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/sshx"
)

func fingerprint(authorizedKey string) string {
	key, err := sshx.ParsePublicKey(authorizedKey)
	if err != nil {
		return "(unreadable)"
	}
	return ssh.FingerprintSHA256(key)
}

// nodeStatus is `moat node ls` output for one node.
type nodeStatus struct {
	inventory.Node
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func (a *app) nodeLsCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List enrolled nodes and whether the master reaches them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			inv, err := openInventory()
			if err != nil {
				return err
			}
			nodes, err := inv.List()
			if err != nil {
				return err
			}
			key, err := inv.MasterKey()
			if err != nil {
				return err
			}
			statuses := checkNodes(cmd.Context(), nodes, key, timeout)
			if a.json {
				return printJSON(a.stdout, statuses)
			}
			rows := [][]string{{"NAME", "ADDRESS", "STATUS", "CONTAINERS", "LABELS", "ENROLLED"}}
			for _, s := range statuses {
				rows = append(rows, []string{s.Name, s.Addr, s.Status, fmt.Sprintf("%d", s.Info.Running), labelString(s.Labels), ago(s.Enrolled, time.Now())})
			}
			return table(a.stdout, rows)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for each node")
	return cmd
}

// checkNodes connects to every node at once and asks each for its info.
func checkNodes(ctx context.Context, nodes []inventory.Node, key ssh.Signer, timeout time.Duration) []nodeStatus {
	pool := sshx.NewPool(sshx.Config{Signer: key})
	defer pool.Close()
	out := make([]nodeStatus, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i] = nodeStatus{Node: n, Status: "down"}
		target, err := n.Target()
		if err != nil {
			out[i].Error = err.Error()
			continue
		}
		conn := pool.Add(target)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			info, err := conn.NodeAPI().Info(ctx)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Status, out[i].Info = "up", info
		}()
	}
	wg.Wait()
	return out
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

func (a *app) nodeRmCommand() *cobra.Command {
	var purge bool
	var sshOpts []string
	cmd := &cobra.Command{
		Use:   "rm [--purge] NODE",
		Short: "Reverse an enrolment: stop the node's containers and daemon, remove the master's key and moat",
		Long: `Reverse an enrolment over your own SSH access (as node add reached it):
stop the node's containers and daemon, remove the master's key, the service
and /usr/local/bin/moat. --purge also deletes /var/lib/moat (images, logs).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inv, err := openInventory()
			if err != nil {
				return err
			}
			node, err := inv.Get(args[0])
			if err != nil {
				return err
			}
			key, err := inv.MasterKey()
			if err != nil {
				return err
			}
			var extra []string
			for _, o := range sshOpts {
				extra = append(extra, "-o", o)
			}
			log := func(step string) { fmt.Fprintln(a.stderr, "  "+step) }
			if err := enroll.Remove(cmd.Context(), node, key.PublicKey(), extra, purge, log); err != nil {
				return fmt.Errorf("remove node %s: %w", node.Name, err)
			}
			if err := inv.Delete(node.Name); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, node.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the node's data: images, containers, logs, settings")
	cmd.Flags().StringArrayVarP(&sshOpts, "ssh-option", "o", nil, "extra ssh option (repeatable)")
	return cmd
}
