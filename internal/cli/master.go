package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/appscale"
	"github.com/moatcloud/moat/internal/master"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
)

func (a *app) initCommand() *cobra.Command {
	var dir string
	var sshSetup initSSH
	cmd := &cobra.Command{
		Use:   "init [--dir DIR]",
		Short: "Create the master's state: database, image store, SSH key",
		Long: `Create the master's state in DIR (default /var/lib/moat-master, or
MOAT_MASTER_DIR): the SQLite database, the image store, and the master's SSH
key, whose public half nodes pin to moat gate. Nodes enrolled before the
master existed move into the database. Running it again is harmless.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				dir = masterDir()
			}
			key, moved, err := master.Init(cmd.Context(), dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "master state in %s\nmaster key: %s\n", dir, sshkey.AuthorizedKey(key))
			if moved > 0 {
				fmt.Fprintf(a.stdout, "%d enrolled nodes moved into the database\n", moved)
			}
			return sshSetup.run(cmd.Context(), a)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "state directory (default MOAT_MASTER_DIR or /var/lib/moat-master)")
	sshSetup.flags(cmd.Flags())
	return cmd
}

func (a *app) masterCommand() *cobra.Command {
	var cfg master.Config
	gcGrace := master.DefaultGCGrace
	cfg.GCGrace = &gcGrace
	cmd := &cobra.Command{
		Use:         "master [--dir DIR] [--socket PATH]",
		Short:       "Run the control plane",
		Annotations: map[string]string{daemon: "yes"},
		Long: `Run the control plane: hold an SSH connection to every node, reconcile
apps to their target revisions, replace replicas of dead nodes, and serve the
API on a unix socket (no TCP). Nodes keep running their containers while the
master is down; a restarted master adopts what runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Dir == "" {
				cfg.Dir = masterDir()
			}
			cfg.Log = slog.Default()
			m, err := master.Open(cfg)
			if err != nil {
				return err
			}
			return m.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", "", "state directory (default MOAT_MASTER_DIR or /var/lib/moat-master)")
	f.StringVar(&cfg.Socket, "socket", envOr("MOAT_MASTER_SOCKET", masterapi.DefaultSocket), "API socket")
	apiFlags(f, &cfg)
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", master.DefaultLeaseTTL, "how long nodes may run singletons without hearing from the master")
	f.DurationVar(&cfg.SingletonGrace, "singleton-grace", master.DefaultSingletonGrace, "how long a singleton's node must be down before it starts elsewhere")
	f.DurationVar(&cfg.KeepaliveInterval, "keepalive-interval", sshx.DefaultKeepaliveInterval, "how often a quiet SSH connection to a node is probed")
	f.DurationVar(&cfg.DownAfter, "down-after", sshx.DefaultDownAfter, "silence from a node after which it is down")
	f.IntVar(&cfg.KeepRevisions, "keep-revisions", master.DefaultKeepRevisions, "rollback window: each app's last N distinct images are never collected")
	f.IntVar(&cfg.MaxPushes, "max-pushes", master.DefaultMaxPushes, "image uploads the master makes at once (nodes also fetch from each other)")
	f.IntVar(&cfg.GCThreshold, "gc-threshold", 85, "collect unused images when the master's disk is this full (percent; 0: only on moat image gc)")
	f.DurationVar(&cfg.AppScaleInterval, "app-autoscale-interval", appscale.DefaultPeriod, "how often the app autoscaler decides the replicas of apps with autoscale")
	f.DurationVar(&cfg.AppScaleWindow, "app-autoscale-window", appscale.DefaultWindow, "the app autoscaler's scale-down stabilisation: it scales down only to the highest count it recommended over this window")
	f.BoolVar(&cfg.AppScalePeriodOnly, "app-autoscale-period-only", false, "the app autoscaler decides only every --app-autoscale-interval, not also scale-ups as soon as fresh samples arrive")
	f.DurationVar(&cfg.GCInterval, "gc-interval", master.DefaultGCInterval, "how often the master looks at its disk for --gc-threshold")
	f.DurationVar(cfg.GCGrace, "gc-grace", gcGrace, "images imported or pulled more recently than this are never collected")
	f.DurationVar(&cfg.Pools.Interval, "pool-interval", master.DefaultPoolInterval, "how often the pool manager makes each pool's servers match its size")
	f.DurationVar(&cfg.Pools.BootDeadline, "pool-boot-deadline", master.DefaultBootDeadline, "a pool server not enrolled this long after its create call is destroyed and made again elsewhere")
	f.DurationVar(&cfg.Pools.CreateTimeout, "pool-create-timeout", master.DefaultCreateTimeout, "a create call unanswered this long is given up (a server it made is found by name)")
	f.DurationVar(&cfg.Pools.CreateBackoff, "pool-create-backoff", master.DefaultCreateBackoff, "after a failed creation, a pool waits this long before the next (doubling with each failure in a row, up to 5 minutes)")
	f.DurationVar(&cfg.Pools.OrphanEvery, "pool-orphan-every", master.DefaultOrphanEvery, "how often the providers' servers labelled with this cluster are listed for orphans")
	f.DurationVar(&cfg.Pools.OrphanGrace, "pool-orphan-grace", master.DefaultOrphanGrace, "a server labelled with this cluster and unknown to moat this long is destroyed")
	f.StringVar(&cfg.PrometheusListen, "prometheus-listen", "", "also serve Prometheus' /metrics on 127.0.0.1:PORT (loopback only) or unix:/path (mode 0660); remote scrapers use ssh -L")
	return cmd
}
