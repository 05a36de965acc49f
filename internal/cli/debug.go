package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func (a *app) debugCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "debug REPLICA -- TOOL [ARGS...]",
		Short: "Run one of the node's own tools inside a replica's namespaces, over your own SSH",
		Long: `Run a program from the node's filesystem inside a replica's pid, network,
ipc and uts namespaces (not its mount namespace: the tool sees the node's
files, the container's processes, sockets and loopback).

The master only says where the replica runs. The session itself is yours:
your ssh, with your key, your ~/.ssh/config, ssh-agent and known_hosts, to
the node as you reached it at enrolment, running "moat runtime debug"
there as root. The master's key cannot debug: the node refuses it.`,
		Example: "  moat debug web-k3x9q2 -- ss -tlnp",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return usageError{errUsage("want: moat debug REPLICA -- TOOL [ARGS...]")}
			}
			node, err := a.replicaNode(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			argv := append([]string{"runtime", "debug", args[0], "--"}, args[1:]...)
			code, err := enroll.Exec(cmd.Context(), inventory.Access(node.Operator), nil, argv, a.stdin, a.stdout.unbuffered(), a.stderr)
			if err != nil {
				return fmt.Errorf("debug %s on node %s: %w", args[0], node.Name, err)
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}

// replicaNode asks the master where a replica runs and how the operator
// reached that node.
func (a *app) replicaNode(ctx context.Context, replica string) (masterapi.Node, error) {
	if !nodeapi.ValidName(replica) {
		return masterapi.Node{}, errs.Invalid("replica", "%q is not a replica name", replica)
	}
	mc := a.masterClient()
	reps, err := mc.Replicas(ctx, "")
	if err != nil {
		return masterapi.Node{}, err
	}
	where := ""
	for _, r := range reps {
		if r.ID == replica {
			where = r.Node
		}
	}
	if where == "" {
		return masterapi.Node{}, fmt.Errorf("replica %q: %w (moat ps lists them)", replica, errs.ErrNotFound)
	}
	nodes, err := mc.Nodes(ctx)
	if err != nil {
		return masterapi.Node{}, err
	}
	for _, n := range nodes {
		if n.Name == where {
			if n.Operator.Dest == "" {
				return n, fmt.Errorf("node %s: the master has no record of how you reach it over SSH (enrol it with moat node add): %w", where, errs.ErrUnavailable)
			}
			return n, nil
		}
	}
	return masterapi.Node{}, fmt.Errorf("node %s of replica %s: %w", where, replica, errs.ErrNotFound)
}
