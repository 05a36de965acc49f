package cli

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func (a *app) poolCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pool",
		Short: "Manage pools: groups of nodes moat creates and destroys at a provider",
		Long: `A pool is a named group of nodes at one provider: static (machines you
enrol with moat node add; the built-in pool "static" holds them), local
(network namespaces on the master's machine, for trying things out),
digitalocean or hetzner. A cloud pool has a size (min..max, and the size
wanted, which moat pool scale and the cluster autoscaler move), server types
and regions in order of preference, the image its servers boot (made by
moat pool image from your machine, with your credentials), the labels and
tenant of its nodes, and the provider's API token, kept sealed on the
master (never in its database, never shown).

Pools create machines, which costs money: only a cluster admin manages
them. moat cost estimates what they cost a month.`,
	}
	cmd.AddCommand(a.poolAddCommand(), a.poolLsCommand(), a.poolSetCommand(), a.poolRmCommand(), a.poolScaleCommand(), a.poolImageCommand())
	return cmd
}

// poolFlags are the flags of moat pool add and set; spec builds a
// PoolSpec of those given.
type poolFlags struct {
	provider                string
	min, max, creates       int
	types, regions, labels  []string
	image, tenant, endpoint string
	localDir                string
	tokenFile, tokenEnv     string
	idleAfter               time.Duration
	keepBilledHour, shared  bool
	flags                   *pflag.FlagSet
}

func (p *poolFlags) add(f *pflag.FlagSet) {
	p.flags = f
	f.StringVar(&p.provider, "provider", "", "static, local, digitalocean or hetzner")
	f.IntVar(&p.min, "min", 0, "fewest nodes the pool keeps")
	f.IntVar(&p.max, "max", 0, "most nodes the pool may have")
	f.StringArrayVar(&p.types, "type", nil, "server type, in order of preference (repeatable; replaces the list)")
	f.StringArrayVar(&p.regions, "region", nil, "region or location, in order of preference (repeatable; replaces the list)")
	f.StringVar(&p.image, "image", "", "the image servers boot (moat pool image makes it)")
	f.StringArrayVarP(&p.labels, "label", "l", nil, "node label K=V (repeatable; replaces the set)")
	f.StringVar(&p.tenant, "tenant", "", "the tenant whose replicas the pool's nodes run (default: the default tenant)")
	f.BoolVar(&p.shared, "shared", false, "the pool's nodes run every tenant's replicas")
	f.StringVar(&p.endpoint, "endpoint", "", "the provider API's base URL, when not the provider's own")
	f.StringVar(&p.localDir, "local-dir", "", "a local pool's state directory (default: under the master's)")
	f.StringVar(&p.tokenFile, "token-file", "", "file holding the provider's API token")
	f.StringVar(&p.tokenEnv, "token-env", "", "environment variable holding the provider's API token")
	f.DurationVar(&p.idleAfter, "idle-after", 10*time.Minute, "an idle node is retired after this long")
	f.BoolVar(&p.keepBilledHour, "keep-billed-hour", true, "keep an idle hourly-billed server until its paid hour is nearly over")
	f.IntVar(&p.creates, "max-creates-per-hour", 0, "cap on server creations an hour (default twice max, at least 4)")
}

// spec is what the flags given say; flags not given are left out.
func (p *poolFlags) spec(name string) (masterapi.PoolSpec, error) {
	s := masterapi.PoolSpec{Name: name, Provider: p.provider}
	changed := p.flags.Changed
	intp := func(flag string, v int) *int {
		if !changed(flag) {
			return nil
		}
		return &v
	}
	s.Min, s.Max, s.MaxCreatesPerHour = intp("min", p.min), intp("max", p.max), intp("max-creates-per-hour", p.creates)
	strp := func(flag, v string) *string {
		if !changed(flag) {
			return nil
		}
		return &v
	}
	s.Image, s.Tenant, s.Endpoint, s.LocalDir = strp("image", p.image), strp("tenant", p.tenant), strp("endpoint", p.endpoint), strp("local-dir", p.localDir)
	if changed("type") {
		s.Types = &p.types
	}
	if changed("region") {
		s.Regions = &p.regions
	}
	if changed("label") {
		labels, err := parseKV(p.labels, "--label")
		if err != nil {
			return s, err
		}
		if labels == nil {
			labels = map[string]string{}
		}
		s.Labels = &labels
	}
	if changed("shared") {
		s.Shared = &p.shared
	}
	if changed("idle-after") {
		d := nodeapi.Duration(p.idleAfter)
		s.IdleAfter = &d
	}
	if changed("keep-billed-hour") {
		s.KeepBilledHour = &p.keepBilledHour
	}
	token, err := readToken(p.tokenFile, p.tokenEnv)
	if err != nil {
		return s, err
	}
	if token != "" {
		s.Token = &token
	}
	return s, nil
}

// readToken reads an API token from a file or an environment variable
// (never a flag's value: it would be in the shell's history and ps).
func readToken(file, env string) (string, error) {
	switch {
	case file != "" && env != "":
		return "", fmt.Errorf("--token-file and --token-env: give one")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("--token-file %s is empty", file)
		}
		return t, nil
	case env != "":
		t := strings.TrimSpace(os.Getenv(env))
		if t == "" {
			return "", fmt.Errorf("--token-env: $%s is empty or not set", env)
		}
		return t, nil
	}
	return "", nil
}

func (a *app) poolAddCommand() *cobra.Command {
	var pf poolFlags
	cmd := &cobra.Command{
		Use:   "add NAME --provider P [flags]",
		Short: "Add a pool",
		Long: `Add a pool. A cloud pool needs --max, at least one --type and (but for
local) one --region; digitalocean and hetzner pools need the API token,
from --token-file or --token-env. It starts at --min nodes. Without
--image moat creates nothing in it yet: make one with moat pool image.`,
		Example: "  moat pool add web --provider hetzner --min 1 --max 5 --type cx22 --type cx32 --region fsn1 --region nbg1 --token-file ~/.config/hcloud-token\n" +
			"  moat pool add try --provider local --max 4 --type local-1",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := pf.spec(args[0])
			if err != nil {
				return usageError{err}
			}
			if s.Provider == "" {
				return usageError{fmt.Errorf("--provider: give one of static, local, digitalocean, hetzner")}
			}
			p, err := a.masterClient().AddPool(cmd.Context(), s)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, p)
			}
			fmt.Fprintf(a.stdout, "pool %s added (%s, %s)\n", p.Name, p.Provider, poolSize(p))
			if p.Provider != "static" && p.Image == "" {
				fmt.Fprintf(a.stdout, "it creates no server until it has an image: moat pool image %s\n", p.Name)
			}
			return nil
		},
	}
	pf.add(cmd.Flags())
	return cmd
}

func (a *app) poolSetCommand() *cobra.Command {
	var pf poolFlags
	cmd := &cobra.Command{
		Use:   "set NAME [flags]",
		Short: "Change a pool: the flags given, the rest as they are",
		Long: `Change what the flags given say of a pool; the rest stays. A change that
would make a bad pool changes nothing and names the field. --type, --region
and --label replace their lists. Narrowing --min/--max brings the size
wanted within them. A pool's provider does not change.`,
		Example: "  moat pool set web --max 8\n  moat pool set web --image 12345678\n  moat pool set web --token-env HCLOUD_TOKEN",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := pf.spec(args[0])
			if err != nil {
				return usageError{err}
			}
			p, err := a.masterClient().SetPool(cmd.Context(), s)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, p)
			}
			return table(a.stdout, poolRows([]masterapi.Pool{p}))
		},
	}
	pf.add(cmd.Flags())
	return cmd
}

func (a *app) poolLsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List pools: nodes, size, types, regions, image, monthly estimate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, err := a.masterClient().Pools(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, ps)
			}
			return table(a.stdout, poolRows(ps))
		},
	}
}

func poolRows(ps []masterapi.Pool) [][]string {
	rows := [][]string{{"POOL", "PROVIDER", "NODES", "SIZE", "TYPES", "REGIONS", "IMAGE", "TOKEN", "MONTHLY", "STATUS"}}
	for _, p := range ps {
		name, nodes := p.Name, strconv.Itoa(p.Nodes)
		if p.Provider != "static" {
			nodes += "/" + strconv.Itoa(p.Desired)
			if n := coming(p.Servers); n > 0 {
				nodes += fmt.Sprintf(" (+%d coming)", n)
			}
		}
		token := "-"
		if p.TokenSet {
			token = "set"
		}
		rows = append(rows, []string{name, p.Provider, nodes, poolSize(p), orDash(strings.Join(p.Types, ",")),
			orDash(strings.Join(p.Regions, ",")), orDash(p.Image), token, money(p.Monthly, p.Currency, 0), poolStatus(p)})
	}
	return rows
}

// coming counts servers being made.
func coming(ss []masterapi.PoolServer) int {
	n := 0
	for _, s := range ss {
		switch s.State {
		case "creating", "booting", "enrolling":
			n++
		}
	}
	return n
}

// poolStatus is what an operator should know first: removing, the loop
// breaker open, no image yet, the manager's last error; else ok.
func poolStatus(p masterapi.Pool) string {
	const most = 80
	cut := func(s string) string {
		if r := []rune(s); len(r) > most {
			return string(r[:most-1]) + "…"
		}
		return s
	}
	switch {
	case p.Removing:
		return "removing"
	case p.Breaker != "":
		return cut("breaker " + p.Breaker)
	case p.Provider != "static" && p.Image == "":
		return "no image (moat pool image " + p.Name + ")"
	case p.LastError != "":
		return cut(p.LastError)
	}
	return "ok"
}

func poolSize(p masterapi.Pool) string {
	if p.Provider == "static" {
		return "-"
	}
	return fmt.Sprintf("%d-%d", p.Min, p.Max)
}

// money is a monthly estimate: "—" when unknown, with the unpriced
// nodes counted beside it.
func money(v *float64, currency string, unpriced int) string {
	if v == nil {
		return "—"
	}
	s := strings.TrimSpace(fmt.Sprintf("%.2f %s", *v, currency))
	if unpriced > 0 {
		s += fmt.Sprintf(" + %d unpriced", unpriced)
	}
	return s
}

func (a *app) poolRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a pool, draining and destroying its servers first",
		Long: `Remove a pool. One without nodes goes at once. A cloud pool's nodes are
cordoned, drained (their replicas started elsewhere first) and their
servers destroyed, then the pool goes; moat pool ls shows it removing
meanwhile. A static pool's machines are not moat's to destroy: remove its
nodes with moat node rm first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rm, err := a.masterClient().RemovePool(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, rm)
			}
			if rm.Removed {
				fmt.Fprintf(a.stdout, "pool %s removed\n", args[0])
			} else {
				fmt.Fprintf(a.stdout, "pool %s: draining and destroying %d servers; the pool goes once they are gone (moat pool ls)\n", args[0], rm.Draining)
			}
			return nil
		},
	}
}

func (a *app) poolScaleCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "scale POOL=N [POOL=N...]",
		Short:   "Set the number of nodes pools want, within their min..max",
		Long:    "Set the number of nodes pools want, all or none: each within its pool's min..max\n(moat pool set --min/--max changes those). The cluster autoscaler moves it too.",
		Example: "  moat pool scale web=3\n  moat pool scale web=3 batch=0",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := parseScale(args)
			if err != nil {
				return usageError{err}
			}
			ps, err := a.masterClient().ScalePools(cmd.Context(), s)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, ps)
			}
			return table(a.stdout, poolRows(ps))
		},
	}
}

func parseScale(args []string) (masterapi.PoolScale, error) {
	s := masterapi.PoolScale{Desired: map[string]int{}}
	for _, arg := range args {
		name, v, ok := strings.Cut(arg, "=")
		n, err := strconv.Atoi(v)
		if !ok || name == "" || err != nil || n < 0 {
			return s, fmt.Errorf("%q: want POOL=N, N a number of nodes", arg)
		}
		if _, dup := s.Desired[name]; dup {
			return s, fmt.Errorf("pool %s given twice", name)
		}
		s.Desired[name] = n
	}
	return s, nil
}

func (a *app) costCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cost",
		Short: "Estimate what pools cost a month, per pool and tenant",
		Long: `Estimate what the pools' servers cost a month: each server at its type's
monthly price, as the provider's API lists it (fetched at most hourly).
Machines of static pools, which moat did not create, are counted but not
priced (—). Pools without nodes are left out; moat pool ls lists them all.
A tenant's users see their tenant's pools.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.masterClient().Cost(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, c)
			}
			return table(a.stdout, costRows(c))
		},
	}
}

func costRows(c masterapi.Cost) [][]string {
	rows := [][]string{{"POOL", "PROVIDER", "TENANT", "NODES", "MONTHLY"}}
	for _, r := range c.Pools {
		rows = append(rows, []string{r.Pool, r.Provider, r.Tenant, strconv.Itoa(r.Nodes), money(r.Monthly, r.Currency, r.Unpriced)})
	}
	for _, r := range c.Tenants {
		rows = append(rows, []string{"(tenant)", "", r.Tenant, strconv.Itoa(r.Nodes), money(r.Monthly, r.Currency, r.Unpriced)})
	}
	for _, cur := range slices.Sorted(maps.Keys(c.Totals)) {
		v := c.Totals[cur]
		rows = append(rows, []string{"(total)", "", "", "", money(&v, cur, 0)})
	}
	return rows
}

// staticPool labels a node moat node add enrols with its pool: the
// built-in static pool needs no label; another must be a static pool
// (moat creates a cloud pool's nodes itself).
func staticPool(ctx context.Context, c *masterapi.Client, pool string, labels *map[string]string) error {
	if pool == "" || pool == "static" {
		return nil
	}
	ps, err := c.Pools(ctx)
	if err != nil {
		return fmt.Errorf("--pool %s: %w", pool, err)
	}
	for _, p := range ps {
		if p.Name != pool {
			continue
		}
		if p.Provider != "static" {
			return usageError{fmt.Errorf("--pool %s: a %s pool's nodes are created by moat (moat pool scale %s=N); moat node add enrols into a static pool", pool, p.Provider, pool)}
		}
		if *labels == nil {
			*labels = map[string]string{}
		}
		(*labels)[poolLabel] = pool
		return nil
	}
	return usageError{fmt.Errorf("--pool %s: no such pool (moat pool add %s --provider static)", pool, pool)}
}

// poolLabel names a node's pool (store.PoolLabel, provider.LabelPool).
const poolLabel = "moat-pool"
