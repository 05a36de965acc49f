package cli

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/nodeapi"
)

func (a *app) nodeAuditCommand() *cobra.Command {
	var strict bool
	cmd := &cobra.Command{
		Use:   "audit [--strict] NODE",
		Short: "Show what a node exposes: every listening socket, sshd settings that weaken it",
		Long: `Ask a node, through the master's gate, for every listening TCP and UDP
socket (from /proc/net, with the owning process) and the sshd settings that
weaken it, and flag anything besides sshd. moat's promise — a node listens
on no port but OpenSSH — is checkable, not taken on faith. On an edge node
(moat node add --edge) the node daemon's HTTP and HTTPS ports are reported
as "edge (intended)"; anything else besides sshd is unexpected, a high
finding unless it listens on loopback only. With --strict the command
fails if any finding is high.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			report, err := a.masterClient().Audit(ctx, args[0])
			if err != nil {
				return fmt.Errorf("audit %s: %w", args[0], err)
			}
			if a.json {
				if err := printJSON(a.stdout, report); err != nil {
					return err
				}
			} else {
				rows := [][]string{{"PROTO", "ADDRESS", "PORT", "PROCESS", "PID", "NOTE"}}
				for _, s := range report.Sockets {
					rows = append(rows, []string{s.Proto, s.Address, strconv.Itoa(s.Port), orDash(s.Process), pidString(s.Pid), socketNote(s)})
				}
				var b bytes.Buffer
				table(&b, rows)
				fmt.Fprintln(&b)
				if report.Hardening != "" {
					fmt.Fprintf(&b, "sshd hardening: %s\n", report.Hardening)
				}
				if len(report.Findings) == 0 {
					fmt.Fprintln(&b, "nothing found: only sshd listens, sshd accepts keys only and offers only strong algorithms")
				}
				for _, f := range report.Findings {
					fmt.Fprintf(&b, "%-5s %s\n", f.Severity, f.What)
				}
				if _, err := a.stdout.Write(b.Bytes()); err != nil {
					return err
				}
			}
			if strict {
				for _, f := range report.Findings {
					if f.Severity == "high" {
						return fmt.Errorf("audit %s: high findings", args[0])
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "exit non-zero on any high finding")
	return cmd
}

// socketNote says what a listening socket is to the node's promise.
func socketNote(s nodeapi.AuditSocket) string {
	switch {
	case s.Intended != "":
		return s.Intended
	case s.Process == "sshd":
		return "sshd"
	case s.Loopback:
		return "loopback only"
	}
	return "unexpected"
}
