package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func (a *app) logsCommand() *cobra.Command {
	var opts nodeapi.LogOptions
	var timestamps bool
	cmd := &cobra.Command{
		Use:   "logs APP [-f] [--tail N] [--since D]",
		Short: "Print an app's output, merged across its replicas",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.masterClient().Logs(cmd.Context(), args[0], opts, func(l masterapi.LogLine) error {
				if a.json {
					return printJSONLine(a.stdout, l)
				}
				w := a.stdout
				if l.Stream == "stderr" {
					w = a.stderr
				}
				prefix := l.Replica + " | "
				if timestamps {
					prefix = l.Time.Format(time.RFC3339Nano) + " " + prefix
				}
				_, err := fmt.Fprintln(w, prefix+l.Line)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new output")
	f.IntVar(&opts.Tail, "tail", -1, "only the last N lines of each replica")
	f.StringVar(&opts.Since, "since", "", "only output since a time (RFC 3339) or a duration ago (10m)")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "prefix each line with its time")
	return cmd
}
