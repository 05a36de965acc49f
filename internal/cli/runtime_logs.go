package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/nodeapi"
)

func (r *runtimeCtx) logsCommand() *cobra.Command {
	var opts nodeapi.LogOptions
	var timestamps bool
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [--since D] CONTAINER",
		Short: "Print a container's output (stdout to stdout, stderr to stderr)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.client().Logs(cmd.Context(), args[0], opts, func(e nodeapi.LogEntry) error {
				if r.json {
					printJSONLine(r.stdout, e)
					return r.flushLog(opts.Follow)
				}
				line := e.Line
				if !e.Partial {
					line += "\n"
				}
				if timestamps {
					line = e.Time.Format(time.RFC3339Nano) + " " + line
				}
				return r.logLine(e.Stream == "stderr", line, opts.Follow)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new output until the container stops")
	f.IntVar(&opts.Tail, "tail", -1, "only the last N lines")
	f.StringVar(&opts.Since, "since", "", "only output since a time (RFC 3339) or a duration ago (10m)")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "prefix each line with its time")
	return cmd
}
