package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"golang.org/x/term"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/quantity"
)

func (a *app) deployCommand() *cobra.Command {
	var file string
	var detach bool
	cmd := &cobra.Command{
		Use:   "deploy -f APP.yaml [--detach]",
		Short: "Deploy an app: make a revision and roll it out",
		Long: `Deploy an app from its spec (see docs/app-spec.md): the master makes a new
revision and rolls it out under the spec's update strategy. A replica counts
only once its health check passes. The command shows progress and waits;
if the new replicas fail their health checks, crash, or are not healthy by
the deadline, the master rolls back and this command prints the failing
replica's last log lines and exits non-zero.`,
		Example: "  moat deploy -f web.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(file)
			if err != nil {
				return usageError{err}
			}
			c := a.masterClient()
			resp, err := c.Deploy(cmd.Context(), masterapi.DeployRequest{Spec: string(data), File: file})
			if err != nil {
				return err
			}
			if detach {
				return a.report(resp, fmt.Sprintf("%s revision %d", resp.App, resp.Revision))
			}
			return a.watchRollout(cmd, resp.App, resp.Revision)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the app spec (YAML)")
	cmd.Flags().BoolVar(&detach, "detach", false, "do not wait for the rollout")
	cmd.MarkFlagRequired("file")
	return cmd
}

// watchRollout follows a revision until its rollout is over and exits
// non-zero unless it deployed (or its canaries wait for promotion).
func (a *app) watchRollout(cmd *cobra.Command, app string, rev int) error {
	tty := false
	if f, ok := a.stderr.(*os.File); ok && !a.json {
		tty = term.IsTerminal(int(f.Fd()))
	}
	var bars *rolloutBars
	if tty {
		bars = newRolloutBars(a.stderr)
	}
	var last masterapi.Progress
	var lastLine string
	announced := map[string]bool{}
	err := a.masterClient().Watch(cmd.Context(), app, rev, func(p masterapi.Progress) error {
		last = p
		if a.json {
			return nil
		}
		line := fmt.Sprintf("%s revision %d: %d/%d ready", app, rev, p.Ready, p.Desired)
		if p.Old > 0 {
			line += fmt.Sprintf(", %d old to replace", p.Old)
		}
		if p.Message != "" && !p.Terminal() {
			line += " (" + firstLine(p.Message) + ")"
		}
		if !tty {
			// Logs get a line per change of state, and one per image
			// delivery begun, not every byte count.
			for _, t := range p.Transfers {
				if key := t.Node + "<" + t.From; !announced[key] {
					announced[key] = true
					fmt.Fprintf(a.stderr, "image to %s from %s: %s\n", t.Node, t.From, quantity.FormatBytes(t.Total))
				}
			}
			if line != lastLine {
				fmt.Fprintln(a.stderr, line)
				lastLine = line
			}
			return nil
		}
		bars.update(line, p.Transfers)
		return nil
	})
	if tty {
		bars.done()
	}
	if err != nil {
		return err
	}
	if a.json {
		printJSON(a.stdout, last)
	}
	switch last.Status {
	case "deployed":
		if !a.json {
			fmt.Fprintf(a.stdout, "deployed %s revision %d: %d/%d ready\n", app, rev, last.Ready, last.Desired)
		}
		return nil
	case "canary":
		fmt.Fprintf(a.stderr, "%s\n", last.Message)
		return nil
	case "failed":
		fmt.Fprintf(a.stderr, "revision %d failed: %s\n", rev, last.Message)
		if last.RolledBackTo > 0 {
			fmt.Fprintf(a.stderr, "rolled back: revision %d restores the last healthy one\n", last.RolledBackTo)
		}
		return exitError{1}
	}
	fmt.Fprintf(a.stderr, "revision %d is %s\n", rev, last.Status)
	return exitError{1}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// report prints a one-line result, or v as JSON.
func (a *app) report(v any, line string) error {
	if a.json {
		return printJSON(a.stdout, v)
	}
	fmt.Fprintln(a.stdout, line)
	return nil
}
