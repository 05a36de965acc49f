package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/masterapi"
)

func (a *app) alertsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List the alerts firing and those resolved in the last day; manage the webhooks they go to",
		Long: `List the alerts firing, then those resolved in the last day (newest first).

The master evaluates its rules every 2 s: node down, crash loop, repeated
restarts, OOM kill, disk over 90 %, memory near its limit, failed deploy.
An app sets its own memory and restart thresholds in its spec (alerts:).
Each alert's firing and its resolution is posted once, as JSON, to every
webhook (moat alerts webhook add), retried until the webhook takes it.
A tenant's user sees its apps' alerts; the nodes' only a user who may list
nodes.`,
		Example: "  moat alerts\n  moat alerts --json\n  moat alerts webhook add https://hooks.example.com/moat --name ops",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := a.masterClient().Alerts(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, list)
			}
			now := time.Now()
			if len(list.Active) == 0 {
				fmt.Fprintln(a.stdout, "no alert firing")
			} else {
				rows := [][]string{{"SEVERITY", "ALERT", "SINCE", "SUMMARY"}}
				for _, x := range list.Active {
					rows = append(rows, []string{x.Severity, x.Key, ago(x.Since, now), x.Summary})
				}
				if err := table(a.stdout, rows); err != nil {
					return err
				}
			}
			if len(list.Resolved) > 0 {
				fmt.Fprintln(a.stdout, "\nresolved in the last day:")
				rows := [][]string{{"SEVERITY", "ALERT", "FIRED", "RESOLVED", "SUMMARY"}}
				for _, x := range list.Resolved {
					rows = append(rows, []string{x.Severity, x.Key, ago(x.Fired, now), ago(x.Resolved, now), x.Summary})
				}
				return table(a.stdout, rows)
			}
			return nil
		},
	}
	cmd.AddCommand(a.webhookCommand())
	return cmd
}

func (a *app) webhookCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Manage the webhooks alerts are posted to (cluster admins)",
	}
	var name string
	add := &cobra.Command{
		Use:   "add URL [--name NAME]",
		Short: "Post every alert's firing and resolution to URL, as JSON (name: the URL's host by default)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := a.masterClient().AddWebhook(cmd.Context(), masterapi.NewWebhook{Name: name, URL: args[0]})
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, w)
			}
			fmt.Fprintf(a.stdout, "webhook %s added: alerts from now on are posted to %s\n", w.Name, w.URL)
			return nil
		},
	}
	add.Flags().StringVar(&name, "name", "", "what to call it (default: the URL's host)")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the webhooks and the notices queued for each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hooks, err := a.masterClient().Webhooks(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, hooks)
			}
			rows := [][]string{{"NAME", "URL", "QUEUED", "LAST ERROR"}}
			for _, w := range hooks {
				rows = append(rows, []string{w.Name, w.URL, fmt.Sprint(w.Queued), w.LastError})
			}
			return table(a.stdout, rows)
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a webhook and the notices queued for it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.masterClient().RemoveWebhook(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(add, ls, rm)
	return cmd
}
