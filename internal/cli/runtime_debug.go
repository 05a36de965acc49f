package cli

import (
	"github.com/spf13/cobra"
)

func (r *runtimeCtx) debugCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "debug CONTAINER -- TOOL [ARGS...]",
		Short: "Run one of the node's own tools inside a container's namespaces",
		Long: `Run a program from the node's filesystem (ps, ss, strace, curl, ...) inside
the container's pid, network, ipc and uts namespaces, but not its mount
namespace: minimal images have no tools, and need none. The tool sees the
container's processes and sockets; the container cannot reach the tool.
The command exits with the tool's exit status.`,
		Example: "  moat runtime debug web -- ps aux\n  moat runtime debug web -- ss -tlnp\n  moat runtime debug web -- curl -s http://127.0.0.1:8080/",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash != 1 {
				return usageError{errUsage("want: moat runtime debug CONTAINER -- TOOL [ARGS...]")}
			}
			code, err := r.client().Debug(cmd.Context(), args[0], args[1:], r.stdin, r.stdout.unbuffered(), r.stderr)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}
