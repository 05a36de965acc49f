package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/quantity"
)

// runtimeCtx is what the `moat runtime` subcommands share: a client for one
// node daemon's socket.
type runtimeCtx struct {
	*app
	socket string
}

func (r *runtimeCtx) client() *nodeapi.Client { return nodeapi.UnixClient(r.socket) }

func (a *app) runtimeCommand() *cobra.Command {
	r := &runtimeCtx{app: a}
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "Talk to one node daemon directly (import, run, ps, logs, debug...)",
	}
	cmd.PersistentFlags().StringVar(&r.socket, "socket", envOr("MOAT_NODE_SOCKET", nodeapi.Socket), "node daemon socket")
	cmd.AddCommand(r.importCommand(), r.runCommand(), r.startCommand(), r.psCommand(), r.inspectCommand(),
		r.stopCommand(), r.rmCommand(), r.logsCommand(), r.debugCommand(), r.imagesCommand(), r.rmiCommand(), r.infoCommand())
	return cmd
}

func (r *runtimeCtx) psCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ps",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := r.client().Containers(cmd.Context())
			if err != nil {
				return err
			}
			if r.json {
				return printJSON(r.stdout, cs)
			}
			now := time.Now()
			rows := [][]string{{"ID", "IMAGE", "STATE", "PID", "RESTARTS", "EXIT", "STARTED"}}
			for _, c := range cs {
				rows = append(rows, []string{c.ID, c.Image, c.State, pidString(c.Pid), strconv.Itoa(c.Restarts), exitString(c), ago(c.Started, now)})
			}
			return table(r.stdout, rows)
		},
	}
}

func pidString(pid int) string {
	if pid == 0 {
		return "-"
	}
	return strconv.Itoa(pid)
}

func exitString(c nodeapi.Container) string {
	switch {
	case c.ExitCode == nil:
		return "-"
	case c.Error != "":
		return "error"
	case c.OOMKilled:
		return fmt.Sprintf("%d (oom)", *c.ExitCode)
	case c.Signal != "":
		return fmt.Sprintf("%d (%s)", *c.ExitCode, c.Signal)
	}
	return strconv.Itoa(*c.ExitCode)
}

func (r *runtimeCtx) inspectCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect CONTAINER",
		Short: "Show a container's state and configuration",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client().Container(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if r.json {
				return printJSON(r.stdout, c)
			}
			return printContainer(r, c)
		},
	}
}

func printContainer(r *runtimeCtx, c nodeapi.Container) error {
	rows := [][]string{
		{"id:", c.ID}, {"image:", c.Image + " (" + shortDigest(c.ImageDigest) + ")"}, {"state:", c.State},
		{"pid:", pidString(c.Pid)}, {"restarts:", strconv.Itoa(c.Restarts)}, {"exit:", exitString(c)},
		{"created:", fmtTime(c.Created)}, {"started:", fmtTime(c.Started)}, {"finished:", fmtTime(c.Finished)},
	}
	if c.Error != "" {
		rows = append(rows, []string{"error:", c.Error})
	}
	if !c.NextRestart.IsZero() {
		rows = append(rows, []string{"next restart:", fmtTime(c.NextRestart)})
	}
	if len(c.Spec.Ports) > 0 {
		var ps []string
		for _, p := range c.Spec.Ports {
			ps = append(ps, fmt.Sprintf("%d/%s", p.Port, p.ProtocolOrTCP()))
		}
		rows = append(rows, []string{"ports:", strings.Join(ps, ", ")})
	}
	return table(r.stdout, rows)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func (r *runtimeCtx) startCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "start CONTAINER...",
		Short: "Start created or exited containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, id := range args {
				if _, err := r.client().StartContainer(cmd.Context(), id); err != nil {
					return err
				}
				fmt.Fprintln(r.stdout, id)
			}
			return nil
		},
	}
}

func (r *runtimeCtx) stopCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop [--time D] CONTAINER...",
		Short: "Stop containers: SIGTERM, then SIGKILL after the grace period",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *time.Duration
			if cmd.Flags().Changed("time") {
				t = &timeout
			}
			for _, id := range args {
				if _, err := r.client().StopContainer(cmd.Context(), id, t); err != nil {
					return err
				}
				fmt.Fprintln(r.stdout, id)
			}
			return nil
		},
	}
	cmd.Flags().DurationVarP(&timeout, "time", "t", 0, "grace period before SIGKILL (default: the container's stopTimeout, else 10s)")
	return cmd
}

func (r *runtimeCtx) rmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [-f] CONTAINER...",
		Short: "Remove containers and their logs",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, id := range args {
				if err := r.client().RemoveContainer(cmd.Context(), id, force); err != nil {
					return err
				}
				fmt.Fprintln(r.stdout, id)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return cmd
}

func (r *runtimeCtx) imagesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List the node's images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			imgs, err := r.client().Images(cmd.Context())
			if err != nil {
				return err
			}
			if r.json {
				return printJSON(r.stdout, imgs)
			}
			sort.Slice(imgs, func(i, j int) bool { return imgs[i].Name < imgs[j].Name })
			rows := [][]string{{"NAME", "DIGEST", "SIZE", "LAYERS", "IMPORTED"}}
			for _, img := range imgs {
				rows = append(rows, []string{orDash(img.Name), shortDigest(img.Digest), quantity.FormatBytes(img.Size), strconv.Itoa(img.Layers), ago(img.Imported, time.Now())})
			}
			return table(r.stdout, rows)
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (r *runtimeCtx) rmiCommand() *cobra.Command {
	return removeImagesCommand("rmi", "Remove images (refused while a container uses them)", r.stdout,
		func(ctx context.Context, ref string) error { return r.client().RemoveImage(ctx, ref) })
}

func (r *runtimeCtx) infoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Describe the node: OS, kernel, runc, cgroups, CPU, memory, disk",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := r.client().Info(cmd.Context())
			if err != nil {
				return err
			}
			if r.json {
				return printJSON(r.stdout, info)
			}
			return table(r.stdout, [][]string{
				{"hostname:", info.Hostname}, {"os:", info.OS}, {"kernel:", info.Kernel + " (" + info.Arch + ")"},
				{"runc:", info.Runc}, {"cgroups:", info.CgroupMode}, {"cpus:", strconv.Itoa(info.CPUs)},
				{"memory:", quantity.FormatBytes(info.MemoryBytes)},
				{"disk:", quantity.FormatBytes(info.DiskFreeBytes) + " free of " + quantity.FormatBytes(info.DiskBytes)},
				{"containers:", fmt.Sprintf("%d (%d running)", info.Containers, info.Running)}, {"moat:", info.Version},
			})
		},
	}
}
