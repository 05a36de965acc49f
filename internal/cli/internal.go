package cli

import (
	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/runtime"
)

// Hidden commands: the same binary re-executed in another role. The shim
// ("moat shim DIR") is dispatched in Main before the command tree exists.

func (a *app) debugExecCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "debug-exec -- TOOL [ARGS...]",
		Short:              "Exec a debug tool inside a container's namespaces (started by the node daemon)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && args[0] == "--" {
				args = args[1:]
			}
			return runtime.RunDebugExec(args)
		},
	}
}
