package cli

import (
	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/provider/local"
)

func (a *app) devCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "dev", Short: "A local cluster in network namespaces, for development"}
	cmd.AddCommand(a.devNodeInitCommand())
	return cmd
}

func (a *app) devNodeInitCommand() *cobra.Command {
	var dir, netns, hostname string
	cmd := &cobra.Command{
		Use:    "node-init --netns NAME --dir DIR -- PROGRAM [ARGS...]",
		Short:  "Enter a local node's private directories and exec its sshd (run by moat dev up)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return local.NodeInit(netns, dir, hostname, args)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the node's directory")
	cmd.Flags().StringVar(&netns, "netns", "", "the node's network namespace")
	cmd.Flags().StringVar(&hostname, "hostname", "", "the node's host name")
	cmd.MarkFlagRequired("dir")
	return cmd
}
