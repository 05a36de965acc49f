package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/masterapi"
)

func (a *app) eventsCommand() *cobra.Command {
	var q masterapi.EventQuery
	cmd := &cobra.Command{
		Use:   "events [--follow] [--app A] [--node N] [--since DURATION|TIME] [--limit N]",
		Short: "Show what happened to nodes and apps: up, down, deploys, rollbacks, restarts, OOM kills, alerts",
		Long: `Show the master's event log, oldest first: nodes coming up and going down,
deploys, scales and rollbacks, rollouts finished or failed, containers
restarting or killed for memory, alerts firing and resolving, and samples
of metrics a node lost before the master could pull them.

With --follow the command keeps printing each new event as it is logged.
A tenant's user sees its apps' events; the nodes' own only a user who may
list nodes. The master keeps the newest 100,000 events, for 30 days at most.`,
		Example: "  moat events --since 1h\n  moat events --follow --app web\n  moat events --node n1 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := masterapi.ParseSince(q.Since, time.Now()); err != nil {
				return usageError{err}
			}
			if q.Limit < 0 || q.Limit > masterapi.MaxEventLimit {
				return usageError{fmt.Errorf("--limit %d: want 1 to %d events", q.Limit, masterapi.MaxEventLimit)}
			}
			c := a.masterClient()
			if q.Follow {
				return c.FollowEvents(cmd.Context(), q, func(e masterapi.Event) error {
					if a.json {
						printJSONLine(a.stdout, e)
					} else {
						fmt.Fprintln(a.stdout, eventLine(e))
					}
					return a.stdout.Flush()
				})
			}
			events, err := c.Events(cmd.Context(), q)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, events)
			}
			return table(a.stdout, eventRows(events))
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&q.Follow, "follow", "f", false, "keep printing new events as they are logged")
	f.StringVar(&q.App, "app", "", "only this app's events")
	f.StringVar(&q.Node, "node", "", "only this node's events (and its replicas')")
	f.StringVar(&q.Since, "since", "", "events from this long ago (30m, 1h, 2d) or this time (2026-12-07T10:00:00Z, 2026-12-07)")
	f.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("only the newest N events (default %d)", masterapi.DefaultEventLimit))
	return cmd
}

// eventRows is the event log as a table, oldest first.
func eventRows(events []masterapi.Event) [][]string {
	rows := [][]string{{"TIME", "KIND", "NODE", "APP", "REPLICA", "MESSAGE"}}
	for _, e := range events {
		rows = append(rows, []string{e.Time.Local().Format(time.DateTime), printable(e.Kind), orDash(printable(e.Node)),
			orDash(eventApp(e)), orDash(printable(e.Replica)), orDash(printable(e.Message))})
	}
	return rows
}

// eventLine is one event on a line of its own, as --follow prints it.
func eventLine(e masterapi.Event) string {
	where := ""
	if app := eventApp(e); app != "" {
		where = app
		if e.Replica != "" {
			where += " " + printable(e.Replica)
		}
	}
	if e.Node != "" {
		if where != "" {
			where += " on "
		}
		where += printable(e.Node)
	}
	return fmt.Sprintf("%s  %-14s %s  %s", e.Time.Local().Format(time.DateTime), printable(e.Kind), orDash(where), printable(e.Message))
}

// eventApp names an event's app: with its revision, and its tenant when
// not the default one.
func eventApp(e masterapi.Event) string {
	if e.App == "" {
		return ""
	}
	s := printable(e.App)
	if e.Tenant != "" {
		s = printable(e.Tenant) + "/" + s
	}
	if e.Revision > 0 {
		s += "@" + strconv.Itoa(e.Revision)
	}
	return s
}
