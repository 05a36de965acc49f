package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/quantity"
)

func (a *app) tenantCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Manage tenants, which own apps and nodes, and their quotas",
		Long: `Tenants own apps and nodes. A tenant's replicas run only on its own nodes
(moat node add --tenant T) and on nodes added with --shared. Apps are named
within their tenant. The default tenant always exists and holds everything
made before tenants and without naming one.`,
	}
	cmd.AddCommand(a.tenantAddCommand(), a.tenantLsCommand(), a.tenantRmCommand(), a.tenantQuotaCommand())
	return cmd
}

func (a *app) tenantAddCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "add NAME",
		Short: "Make a tenant (without a quota)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.masterClient().AddTenant(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, t)
			}
			fmt.Fprintf(a.stdout, "tenant %s added: add its nodes with moat node add --tenant %s, limit it with moat tenant quota %s\n", t.Name, t.Name, t.Name)
			return nil
		},
	}
}

func (a *app) tenantLsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List tenants: what each uses of its quota",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := a.masterClient().Tenants(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, ts)
			}
			rows := [][]string{{"TENANT", "APPS", "REPLICAS", "CPU", "MEMORY", "NODES", "AGE"}}
			for _, t := range ts {
				u, q := t.Usage, t.Quota
				rows = append(rows, []string{t.Name, usedOf(u.Apps, q.Apps, count), usedOf(u.Replicas, q.Replicas, count),
					usedOf(u.MilliCPU, q.MilliCPU, cpuAmount), usedOf(u.MemoryBytes, q.MemoryBytes, quantity.FormatBytes),
					usedOf(u.Nodes, q.Nodes, count), ago(t.Created, time.Now())})
			}
			return table(a.stdout, rows)
		},
	}
}

func (a *app) tenantRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a tenant that holds no app and no node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.masterClient().RemoveTenant(cmd.Context(), args[0])
		},
	}
}

func (a *app) tenantQuotaCommand() *cobra.Command {
	limits := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "quota NAME [--cpu 4] [--memory 8Gi] [--replicas 50] [--apps 10] [--nodes 5]",
		Short: "Show a tenant's quota and use, or set limits ('none' lifts one)",
		Long: `Show a tenant's quota and what it uses, or, with flags, set those limits
(the others stay). A limit of none lifts it. CPU and memory count what the
tenant's apps ask for (replicas × their resources), replicas what they ask
for in total, nodes the tenant's own. A deploy, scale, rollback or node
add that would go over a limit is refused and changes nothing; what a
tenant uses already is left alone when a limit is lowered below it.`,
		Example: "  moat tenant quota acme --cpu 4 --memory 8Gi --replicas 50\n  moat tenant quota acme --memory none\n  moat tenant quota acme",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := a.masterClient()
			t, err := c.Tenant(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			changed := false
			for _, f := range quotaFlags {
				v := limits[f.name]
				if !cmd.Flags().Changed(f.name) {
					continue
				}
				n, err := parseLimit(*v, f.parse)
				if err != nil {
					return usageError{fmt.Errorf("--%s: %w", f.name, err)}
				}
				*f.field(&t.Quota) = n
				changed = true
			}
			if changed {
				if t, err = c.SetQuota(cmd.Context(), args[0], t.Quota); err != nil {
					return err
				}
			}
			if a.json {
				return printJSON(a.stdout, t)
			}
			return table(a.stdout, quotaRows(t))
		},
	}
	for _, f := range quotaFlags {
		limits[f.name] = new(string)
		cmd.Flags().StringVar(limits[f.name], f.name, "", f.usage)
	}
	return cmd
}

// quotaFlags are moat tenant quota's flags, in the order shown.
var quotaFlags = []struct {
	name, usage string
	parse       func(string) (int64, error)
	field       func(*masterapi.Quota) **int64
	used        func(masterapi.Usage) int64
	format      func(int64) string
}{
	{"cpu", "CPU the tenant's apps may ask for, in cores (4) or millicores (500m)", quantity.ParseMilliCPU,
		func(q *masterapi.Quota) **int64 { return &q.MilliCPU }, func(u masterapi.Usage) int64 { return u.MilliCPU }, cpuAmount},
	{"memory", "memory they may ask for (8Gi, 512Mi)", quantity.ParseBytes,
		func(q *masterapi.Quota) **int64 { return &q.MemoryBytes }, func(u masterapi.Usage) int64 { return u.MemoryBytes }, quantity.FormatBytes},
	{"replicas", "replicas they may ask for in total", parseCount,
		func(q *masterapi.Quota) **int64 { return &q.Replicas }, func(u masterapi.Usage) int64 { return u.Replicas }, count},
	{"apps", "apps the tenant may have", parseCount,
		func(q *masterapi.Quota) **int64 { return &q.Apps }, func(u masterapi.Usage) int64 { return u.Apps }, count},
	{"nodes", "nodes of its own it may have", parseCount,
		func(q *masterapi.Quota) **int64 { return &q.Nodes }, func(u masterapi.Usage) int64 { return u.Nodes }, count},
}

func quotaRows(t masterapi.Tenant) [][]string {
	rows := [][]string{{"QUOTA", "LIMIT", "USED"}}
	for _, f := range quotaFlags {
		limit := "none"
		if l := *f.field(&t.Quota); l != nil {
			limit = f.format(*l)
		}
		rows = append(rows, []string{f.name, limit, f.format(f.used(t.Usage))})
	}
	return rows
}

// parseLimit reads a limit: "none" (or "unlimited") lifts it.
func parseLimit(s string, parse func(string) (int64, error)) (*int64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "unlimited":
		return nil, nil
	}
	n, err := parse(s)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

func parseCount(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a whole number, or none", s)
	}
	return n, nil
}

// usedOf shows use against a limit: "3/10", or "3/-" without one.
func usedOf(used int64, limit *int64, format func(int64) string) string {
	if limit == nil {
		return format(used) + "/-"
	}
	return format(used) + "/" + format(*limit)
}

// cpuAmount shows CPU as moat tenant quota takes it: whole cores as "4",
// the rest in millicores.
func cpuAmount(m int64) string {
	if m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return strconv.FormatInt(m, 10) + "m"
}

func count(n int64) string { return strconv.FormatInt(n, 10) }

// nodeRoom refuses, before a node is enrolled, to add one to a tenant
// that is missing or at its nodes quota (the master refuses it too, but
// only once the node is enrolled). "" is the tenant requests act in,
// which the master checks.
func nodeRoom(ctx context.Context, c *masterapi.Client, tenant string) error {
	if tenant == "" {
		return nil
	}
	t, err := c.Tenant(ctx, tenant)
	if err != nil {
		return fmt.Errorf("--tenant %s: %w", tenant, err)
	}
	if q := t.Quota.Nodes; q != nil && t.Usage.Nodes >= *q {
		return fmt.Errorf("tenant %s: nodes quota %d: using %d, this node needs 1 more: raise it with moat tenant quota %s --nodes N: %w",
			tenant, *q, t.Usage.Nodes, tenant, errs.ErrForbidden)
	}
	return nil
}

// withTenants puts a TENANT column after the first of a table's columns
// when its rows are of more than one tenant (a cluster admin's view of
// every tenant); tenantOf(i) is the tenant of row i+1.
func withTenants(rows [][]string, several bool, tenantOf func(i int) string) [][]string {
	if !several {
		return rows
	}
	out := make([][]string, len(rows))
	for i, r := range rows {
		t := "TENANT"
		if i > 0 {
			t = tenantOf(i - 1)
		}
		out[i] = append([]string{r[0], t}, r[1:]...)
	}
	return out
}

// nodeTenant is a node's TENANT column: its tenant, marked when shared.
func nodeTenant(n masterapi.Node) string {
	t := orDash(n.Tenant)
	if n.Shared {
		t += " (shared)"
	}
	return t
}
