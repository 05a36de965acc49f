package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/masterapi"
)

func (a *app) autoscalerCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "autoscaler",
		Short: "What the cluster and app autoscalers decided, and why",
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Explain the autoscalers' last decisions, those taken and those not",
		Long: `Explain the autoscalers' last decisions, those taken and those not.

Cluster autoscaler: the last time replicas could be placed on no node,
which apps waited and for what, and for every pool how many nodes it was
asked for or why not (max reached, breaker open, type too small, labels,
tenant, another pool cheaper); then, for every pool node, whether it is
retired as idle or why not (idle 4m of 10m, pool at min, billed hour ends
in 37m, holds a pinned volume or a singleton); then the last actions.
App autoscaler: per autoscaled app, the replicas it wants and why.

A tenant's user sees its apps only; pools, nodes and actions a user who
may list nodes.`,
		Example: "  moat autoscaler status\n  moat autoscaler status --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.masterClient().Autoscaler(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, st)
			}
			return printAutoscaler(a.stdout, st, time.Now())
		},
	}
	cmd.AddCommand(status)
	return cmd
}

// printAutoscaler writes moat autoscaler status's tables.
func printAutoscaler(w io.Writer, st masterapi.AutoscalerStatus, now time.Time) error {
	if up := st.ScaleUp; up == nil {
		fmt.Fprintln(w, "scale-up: no replica has waited for room since the master started")
	} else if len(up.Unplaced) == 0 {
		fmt.Fprintf(w, "scale-up, %s: every replica placed, none waits for room\n", ago(up.Time, now))
	} else {
		fmt.Fprintf(w, "scale-up, %s (decided in %s):\n", ago(up.Time, now), up.Took.Round(time.Microsecond))
		rows := [][]string{{"APP", "UNPLACED", "WAITING FOR"}}
		for _, u := range up.Unplaced {
			what := u.Waiting
			if what == "" {
				what = "nothing: " + u.Unhelped
			}
			rows = append(rows, []string{u.App, strconv.Itoa(u.Replicas), what})
		}
		if err := table(w, rows); err != nil {
			return err
		}
		if len(up.Pools) > 0 {
			fmt.Fprintln(w)
			rows := [][]string{{"POOL", "ADD", "WHY"}}
			for _, p := range up.Pools {
				rows = append(rows, []string{p.Pool, strconv.Itoa(p.Add), p.Reason})
			}
			if err := table(w, rows); err != nil {
				return err
			}
		}
		for _, n := range up.Reuse {
			fmt.Fprintf(w, "draining node %s taken back\n", n)
		}
	}
	if down := st.ScaleDown; down != nil {
		fmt.Fprintf(w, "\nscale-down, %s:\n", ago(down.Time, now))
		if down.Pending != "" {
			fmt.Fprintf(w, "nothing retired while %s\n", down.Pending)
		}
		rows := [][]string{{"NODE", "POOL", "RETIRE", "WHY"}}
		for _, n := range down.Nodes {
			retire := "no"
			if n.Retire {
				retire = "yes"
			}
			rows = append(rows, []string{n.Node, n.Pool, retire, n.Reason})
		}
		if len(down.Nodes) == 0 {
			fmt.Fprintln(w, "no pool node")
		} else if err := table(w, rows); err != nil {
			return err
		}
	}
	if len(st.Actions) > 0 {
		fmt.Fprintln(w, "\nactions:")
		rows := [][]string{{"WHEN", "ACTION", "POOL", "NODE", "COUNT", "WHY"}}
		for _, x := range st.Actions {
			why := x.Reason
			if x.Error != "" {
				why += " (failed: " + x.Error + ")"
			}
			count := ""
			if x.Count > 0 {
				count = strconv.Itoa(x.Count)
			}
			rows = append(rows, []string{ago(x.Time, now), x.Kind, x.Pool, x.Node, count, why})
		}
		if err := table(w, rows); err != nil {
			return err
		}
	}
	if len(st.Apps) > 0 {
		fmt.Fprintln(w, "\napps:")
		rows := [][]string{{"APP", "MIN", "MAX", "CURRENT", "DESIRED", "DECIDED", "WHY"}}
		for _, x := range st.Apps {
			rows = append(rows, []string{x.App, strconv.Itoa(x.Min), strconv.Itoa(x.Max), strconv.Itoa(x.Current), strconv.Itoa(x.Desired), ago(x.Decided, now), x.Reason})
		}
		return table(w, rows)
	}
	return nil
}
