package cli

import (
	"io"
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
					printJSONLine(a.stdout, l)
					return a.flushLog(opts.Follow)
				}
				prefix := l.Replica + " | "
				if timestamps {
					prefix = l.Time.Format(time.RFC3339Nano) + " " + prefix
				}
				return a.logLine(l.Stream == "stderr", prefix+l.Line+"\n", opts.Follow)
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

// logLine prints one line of a container's output: stdout's to stdout,
// stderr's to stderr, in the order they came.
func (a *app) logLine(stderr bool, line string, follow bool) error {
	if stderr {
		if err := a.stdout.Flush(); err != nil {
			return err
		}
		_, err := io.WriteString(a.stderr, line)
		return err
	}
	io.WriteString(a.stdout, line)
	return a.flushLog(follow)
}

// flushLog: a followed log is a stream, each line goes out as it comes;
// a log printed whole goes out in large writes.
func (a *app) flushLog(follow bool) error {
	if follow {
		return a.stdout.Flush()
	}
	return a.stdout.flushOver(64 << 10)
}
