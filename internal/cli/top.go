package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
)

// topRefresh is how often moat top redraws on a terminal.
const topRefresh = 2 * time.Second

func (a *app) topCommand() *cobra.Command {
	var once bool
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show live per node and per app: CPU, memory, disk, network, restarts",
		Long: `Show what every node and app uses now, from the newest samples the master
holds: per node CPU (cores busy of cores), memory, disk and network; per app
its replicas ready and sampled, their CPU and memory summed, and restarts.
On a terminal it redraws in place every 2 s until interrupted; otherwise,
or with --once or --json, it prints once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			live := false
			if f, ok := a.stdout.w.(*os.File); ok && !once && !a.json {
				live = term.IsTerminal(int(f.Fd()))
			}
			if !live {
				v, err := a.topView(cmd.Context())
				if err != nil {
					return err
				}
				if a.json {
					return printJSON(a.stdout, v)
				}
				return topTable(a.stdout, v, time.Now())
			}
			return a.topLive(cmd.Context(), a.stdout.unbuffered())
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "print once, even on a terminal")
	return cmd
}

// topLive redraws every topRefresh until ctx ends: cursor home, clear,
// the frame, in one write. A master that does not answer is shown, and
// asked again next time.
func (a *app) topLive(ctx context.Context, w io.Writer) error {
	tick := time.NewTicker(topRefresh)
	defer tick.Stop()
	for {
		var b bytes.Buffer
		b.WriteString("\x1b[H\x1b[2J")
		v, err := a.topView(ctx)
		if err != nil {
			fmt.Fprintf(&b, "moat top: %v\n", err)
		} else {
			topTable(&b, v, time.Now())
		}
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// topNode and topApp are one row each of moat top (and its --json).
type topNode struct {
	Name      string          `json:"name"`
	State     string          `json:"state"`
	Sampled   time.Time       `json:"sampled,omitzero"`
	CPU       masterapi.Value `json:"cpu"` // cores busy; null: not sampled
	CPUs      int             `json:"cpus"`
	MemUsed   masterapi.Value `json:"memUsed"`
	MemTotal  masterapi.Value `json:"memTotal"`
	DiskUsed  masterapi.Value `json:"diskUsed"`
	DiskTotal masterapi.Value `json:"diskTotal"`
	NetRx     masterapi.Value `json:"netRx"` // bytes/s
	NetTx     masterapi.Value `json:"netTx"`
}

type topApp struct {
	Name     string  `json:"name"`
	Ready    int     `json:"ready"`
	Desired  int     `json:"desired"`
	Sampled  int     `json:"sampled"` // replicas with a recent sample
	CPU      float64 `json:"cpu"`     // cores, summed over replicas
	Mem      float64 `json:"mem"`     // bytes, summed
	Restarts float64 `json:"restarts"`
}

type topData struct {
	Nodes []topNode `json:"nodes"`
	Apps  []topApp  `json:"apps"`
}

// topView asks the master for the latest samples, the nodes and the
// apps. A caller who may not list nodes sees the apps only.
func (a *app) topView(ctx context.Context) (topData, error) {
	c := a.masterClient()
	latest, err := c.MetricsLatest(ctx)
	if err != nil {
		return topData{}, err
	}
	nodes, err := c.Nodes(ctx)
	if errors.Is(err, errs.ErrForbidden) {
		nodes, err = nil, nil
	}
	if err != nil {
		return topData{}, err
	}
	apps, err := c.Apps(ctx)
	if err != nil {
		return topData{}, err
	}
	return buildTop(latest, nodes, apps), nil
}

// buildTop joins the latest samples to the nodes and apps listed.
func buildTop(latest []masterapi.Latest, nodes []masterapi.Node, apps []masterapi.App) topData {
	v := topData{Nodes: []topNode{}, Apps: []topApp{}}
	byNode := map[string]masterapi.Latest{}
	perApp := map[string]*topApp{}
	for _, l := range latest {
		switch l.Kind {
		case masterapi.MetricsNode:
			byNode[l.Name] = l
		case masterapi.MetricsReplica:
			t := perApp[l.App]
			if t == nil {
				t = &topApp{}
				perApp[l.App] = t
			}
			t.Sampled++
			t.CPU += known(l.Value("cpu"))
			t.Mem += known(l.Value("mem"))
			t.Restarts += known(l.Value("restarts"))
		}
	}
	for _, n := range nodes {
		nan := masterapi.Value(math.NaN())
		t := topNode{Name: n.Name, State: n.State, CPUs: n.Info.CPUs, CPU: nan, MemUsed: nan, MemTotal: nan, DiskUsed: nan, DiskTotal: nan, NetRx: nan, NetTx: nan}
		if l, ok := byNode[n.Name]; ok {
			v := func(f string) masterapi.Value { return masterapi.Value(l.Value(f)) }
			t.Sampled = l.Time
			t.CPU, t.MemUsed, t.MemTotal = v("cpu"), v("mem_used"), v("mem_total")
			t.DiskUsed, t.DiskTotal = v("disk_used"), v("disk_total")
			t.NetRx, t.NetTx = v("net_rx"), v("net_tx")
		}
		v.Nodes = append(v.Nodes, t)
	}
	for _, ap := range apps {
		t := topApp{Name: ap.Name, Ready: ap.Ready, Desired: ap.Desired}
		if s := perApp[ap.Name]; s != nil {
			t.Sampled, t.CPU, t.Mem, t.Restarts = s.Sampled, s.CPU, s.Mem, s.Restarts
		}
		v.Apps = append(v.Apps, t)
	}
	slices.SortFunc(v.Nodes, func(a, b topNode) int { return cmpString(a.Name, b.Name) })
	slices.SortFunc(v.Apps, func(a, b topApp) int { return cmpString(a.Name, b.Name) })
	return v
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func known(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// topTable prints the nodes, then the apps.
func topTable(w io.Writer, v topData, now time.Time) error {
	var b bytes.Buffer
	if len(v.Nodes) > 0 {
		rows := [][]string{{"NODE", "STATE", "CPU", "MEM", "DISK", "NET IN", "NET OUT", "SAMPLED"}}
		for _, n := range v.Nodes {
			cpu := humanValue(float64(n.CPU), "cores")
			if n.CPUs > 0 && cpu != "-" {
				cpu += fmt.Sprintf("/%d", n.CPUs)
			}
			mem := humanValue(float64(n.MemUsed), "bytes")
			if mem != "-" && n.MemTotal > 0 {
				mem += "/" + humanValue(float64(n.MemTotal), "bytes")
			}
			disk := "-"
			if n.DiskTotal > 0 && !math.IsNaN(float64(n.DiskUsed)) {
				disk = fmt.Sprintf("%.0f%%", 100*n.DiskUsed/n.DiskTotal)
			}
			sampled := "-"
			if !n.Sampled.IsZero() {
				sampled = ago(n.Sampled, now) + " ago"
			}
			rows = append(rows, []string{n.Name, n.State, cpu, mem, disk, humanValue(float64(n.NetRx), "bytes/s"), humanValue(float64(n.NetTx), "bytes/s"), sampled})
		}
		if err := table(&b, rows); err != nil {
			return err
		}
		b.WriteString("\n")
	}
	rows := [][]string{{"APP", "READY", "SAMPLED", "CPU", "MEM", "RESTARTS"}}
	for _, ap := range v.Apps {
		rows = append(rows, []string{ap.Name, fmt.Sprintf("%d/%d", ap.Ready, ap.Desired), fmt.Sprint(ap.Sampled),
			humanValue(ap.CPU, "cores"), humanValue(ap.Mem, "bytes"), trimFloat(ap.Restarts)})
	}
	if err := table(&b, rows); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}
