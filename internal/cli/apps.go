package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) appsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "apps",
		Short: "List apps: revision, replicas ready, rollout status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			apps, err := a.masterClient().Apps(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, apps)
			}
			rows := [][]string{{"APP", "REVISION", "READY", "STATUS", "IMAGE", "AGE"}}
			tenants := map[string]bool{}
			for _, x := range apps {
				tenants[x.Tenant] = true
				rows = append(rows, []string{x.Name, strconv.Itoa(x.Revision), fmt.Sprintf("%d/%d", x.Ready, x.Desired), x.Status, x.Image, ago(x.Created, time.Now())})
			}
			return table(a.stdout, withTenants(rows, len(tenants) > 1, func(i int) string { return apps[i].Tenant }))
		},
	}
}

func (a *app) psCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ps [APP]",
		Short: "List replicas: node, state, health, restarts, age",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := ""
			if len(args) == 1 {
				app = args[0]
			}
			reps, err := a.masterClient().Replicas(cmd.Context(), app)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, reps)
			}
			rows := [][]string{{"REPLICA", "APP", "REV", "NODE", "STATE", "HEALTH", "RESTARTS", "AGE", "NOTE"}}
			tenants := map[string]bool{}
			for _, r := range reps {
				tenants[r.Tenant] = true
				rows = append(rows, []string{r.ID, r.App, strconv.Itoa(r.Revision), r.Node, r.State, orDash(r.Health),
					strconv.Itoa(r.Restarts), ago(r.Created, time.Now()), r.Message})
			}
			return table(a.stdout, withTenants(rows, len(tenants) > 1, func(i int) string { return reps[i].Tenant }))
		},
	}
}

func (a *app) historyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "history APP",
		Short: "List an app's revisions: every deploy, scale and rollback",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			revs, err := a.masterClient().Revisions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, revs)
			}
			rows := [][]string{{"REVISION", "", "IMAGE", "REPLICAS", "CAUSE", "STATUS", "AGE", "MESSAGE"}}
			for _, r := range revs {
				mark := ""
				if r.Target {
					mark = "*"
				}
				rows = append(rows, []string{strconv.Itoa(r.Revision), mark, r.Image, strconv.Itoa(r.Replicas), r.Cause, r.Status, ago(r.Created, time.Now()), firstLine(r.Message)})
			}
			return table(a.stdout, rows)
		},
	}
}

func (a *app) rollbackCommand() *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "rollback APP [REVISION]",
		Short: "Go back to an earlier revision (default: the last deployed one)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev := 0
			if len(args) == 2 {
				n, err := strconv.Atoi(args[1])
				if err != nil {
					return usageError{fmt.Errorf("revision %q is not a number", args[1])}
				}
				rev = n
			}
			resp, err := a.masterClient().Rollback(cmd.Context(), args[0], rev)
			if err != nil {
				return err
			}
			if detach {
				return a.report(resp, fmt.Sprintf("%s revision %d", resp.App, resp.Revision))
			}
			return a.watchRollout(cmd, resp.App, resp.Revision)
		},
	}
	cmd.Flags().BoolVar(&detach, "detach", false, "do not wait for the rollout")
	return cmd
}

func (a *app) scaleCommand() *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "scale APP=N",
		Short: "Set an app's replica count (no replica restarts)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, count, ok := strings.Cut(args[0], "=")
			n, err := strconv.Atoi(count)
			if !ok || err != nil || n < 0 {
				return usageError{fmt.Errorf("%q: want APP=N", args[0])}
			}
			resp, err := a.masterClient().Scale(cmd.Context(), app, n)
			if err != nil {
				return err
			}
			if detach {
				return a.report(resp, fmt.Sprintf("%s revision %d", resp.App, resp.Revision))
			}
			return a.watchRollout(cmd, resp.App, resp.Revision)
		},
	}
	cmd.Flags().BoolVar(&detach, "detach", false, "do not wait")
	return cmd
}

func (a *app) rmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rm APP",
		Short: "Remove an app: its replicas are stopped",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.masterClient().RemoveApp(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, args[0])
			return nil
		},
	}
}

func (a *app) promoteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "promote APP",
		Short: "Let a canary revision roll out past its canaries",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := a.masterClient()
			if err := c.Promote(cmd.Context(), args[0]); err != nil {
				return err
			}
			apps, err := c.Apps(cmd.Context())
			if err != nil {
				return err
			}
			for _, x := range apps {
				if x.Name == args[0] {
					return a.watchRollout(cmd, x.Name, x.Revision)
				}
			}
			return nil
		},
	}
}
