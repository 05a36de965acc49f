package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/master"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/provider/local"
	"github.com/moatcloud/moat/internal/sshkey"
)

const defaultDevDir = "/var/lib/moat-dev"

func (a *app) devCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "A local cluster of real nodes in network namespaces, for development",
		Long: `moat dev up makes nodes on this machine: each a network namespace on a
bridge with its own address, its own sshd, its own /root, /etc/ssh,
/var/lib/moat and /var/log. They are enrolled with moat node add, through
ssh, exactly as rented machines are. Reach one with:
ssh -F /var/lib/moat-dev/ssh_config n1. A node's logs are in its directory,
/var/lib/moat-dev/cluster/nN: sshd.log, and var-log (its /var/log).`,
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", defaultDevDir, "state directory of the local cluster")
	cmd.AddCommand(a.devUpCommand(&dir), a.devDownCommand(&dir), a.devNodeInitCommand(),
		a.devPowerCommand(&dir, "kill", "Power a local node off: every process in it, containers included, dies"),
		a.devPowerCommand(&dir, "boot", "Boot a powered-off local node: its sshd and node daemon start"))
	return cmd
}

func (a *app) devUpCommand(dir *string) *cobra.Command {
	var nodes int
	var edges []string
	cmd := &cobra.Command{
		Use:   "up [--nodes N] [--edge NAME]...",
		Short: "Create a local cluster of N enrolled nodes",
		Long: `Create a local cluster of N enrolled nodes, n1 to nN. Nodes named with
--edge are enrolled as edge nodes (moat node add --edge): they serve the
apps' ingress routes on ports 80 and 443 of their address on the bridge.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := os.Stat(filepath.Join(*dir, "cluster", "cluster.json")); err == nil {
				return fmt.Errorf("a local cluster already exists in %s: moat dev down removes it", *dir)
			}
			for _, e := range edges {
				if n, err := strconv.Atoi(strings.TrimPrefix(e, "n")); err != nil || !strings.HasPrefix(e, "n") || n < 1 || n > nodes {
					return usageError{fmt.Errorf("--edge %q: want one of the nodes, n1 to n%d", e, nodes)}
				}
			}
			return a.devUp(cmd.Context(), *dir, nodes, edges)
		},
	}
	cmd.Flags().IntVarP(&nodes, "nodes", "n", 3, "number of nodes")
	cmd.Flags().StringSliceVar(&edges, "edge", nil, "make this node an edge (repeat or comma-separate)")
	return cmd
}

func (a *app) devUp(ctx context.Context, dir string, nodes int, edges []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	c, err := a.ensureMaster(ctx, dir, exe)
	if err != nil {
		return err
	}
	key, err := c.Key(ctx)
	if err != nil {
		return err
	}
	var keys enroll.Options
	if err := setKeys(&keys, key); err != nil {
		return err
	}
	signers, err := devSigner(dir)
	if err != nil {
		return err
	}
	opKey, err := sshkey.LoadOrGenerateKey(filepath.Join(dir, "operator_ed25519"), "moat-dev-operator")
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "creating %d nodes (network namespaces on bridge mbdev, each with its own sshd)\n", nodes)
	cl, err := local.Create(local.Options{
		Name: "dev", Dir: filepath.Join(dir, "cluster"), Nodes: nodes, Moat: exe,
		AuthorizedKeys: []string{sshkey.AuthorizedKey(opKey.PublicKey()) + " moat-dev-operator"},
		Keep:           true,
	})
	if err != nil {
		return err
	}
	sshConfig, err := cl.WriteSSHConfig(dir, filepath.Join(dir, "operator_ed25519"))
	if err != nil {
		return err
	}
	var edgeKey []byte
	if len(edges) > 0 {
		// The dev cluster's, beside its operator key: its edges share it.
		if edgeKey, _, err = loadOrMakeEdgeKey(filepath.Join(dir, "edge-cache.key")); err != nil {
			return err
		}
	}
	fmt.Fprintln(a.stderr, "enrolling them with moat node add (through ssh, as any machine)")
	var wg sync.WaitGroup
	errs := make([]error, len(cl.Nodes))
	for i, n := range cl.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := enroll.Options{
				Access: inventory.Access{Dest: n.Name, SSHConfig: sshConfig}, Name: n.Name,
				Labels: map[string]string{"provider": "local"}, MasterKey: keys.MasterKey,
				PeerPublic: keys.PeerPublic, PeerKey: keys.PeerKey,
				RequireSigned: true, AllowedSigners: signers, HardenSSHD: true,
			}
			if slices.Contains(edges, n.Name) {
				edge := true
				opts.Edge, opts.EdgeCacheKey = &edge, edgeKey
			}
			node, err := enroll.Add(ctx, opts)
			if err == nil {
				err = c.RegisterNode(ctx, node.Registration())
			}
			if err == nil {
				_, err = waitNodeUp(ctx, c, n.Name, 30*time.Second)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("enrol the local nodes: %w (moat dev down cleans up)", err)
	}
	fmt.Fprintf(a.stderr, "ready: moat node ls; ssh -F %s n1\n", sshConfig)
	ls := a.nodeLsCommand()
	ls.SetContext(ctx)
	return ls.RunE(ls, nil)
}

// ensureMaster returns a client of the running master, or makes a master
// of the local cluster's own — state in dir/master, so that dev down leaves
// nothing of it behind and the next dev up starts clean — and starts it,
// detached, logging into dir.
func (a *app) ensureMaster(ctx context.Context, dir, exe string) (*masterapi.Client, error) {
	c := a.masterClient()
	if c.Ping(ctx) == nil {
		fmt.Fprintln(a.stderr, "using the running master")
		return c, nil
	}
	state := filepath.Join(dir, "master")
	if _, _, err := master.Init(ctx, state); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "master.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "master", "--dir", state)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the master: %w", err)
	}
	os.WriteFile(filepath.Join(dir, "master.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
	cmd.Process.Release()
	fmt.Fprintf(a.stderr, "started a master (state: %s, log: %s)\n", state, logf.Name())
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c.Ping(ctx) == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the master did not start: see %s", logf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// devSigner makes the local cluster's image signing key (as an operator
// keeps one on a workstation) and the allowed signers file the nodes get.
func devSigner(dir string) ([]byte, error) {
	key, err := sshkey.LoadOrGenerateKey(filepath.Join(dir, "signer_ed25519"), "moat-dev-signer")
	if err != nil {
		return nil, err
	}
	signers := []byte("dev@moat " + sshkey.AuthorizedKey(key.PublicKey()) + "\n")
	return signers, os.WriteFile(filepath.Join(dir, "allowed_signers"), signers, 0o644)
}

func (a *app) devDownCommand(dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove the local cluster: nodes, containers, namespaces, bridge",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := local.Load(filepath.Join(*dir, "cluster"))
			if errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintln(a.stderr, "no local cluster")
				clouds := localClouds(cmd.Context(), a.masterClient(), *dir)
				stopDevMaster(a, *dir)
				if err := destroyClouds(a, clouds); err != nil {
					return err
				}
				return os.RemoveAll(*dir)
			}
			if err != nil {
				return err
			}
			mc := a.masterClient()
			for _, n := range c.Nodes {
				mc.RemoveNode(cmd.Context(), n.Name)
			}
			clouds := localClouds(cmd.Context(), mc, *dir)
			// The master first: its socket keeps /run/moat, which the
			// nodes' removal removes once it is empty; and stopped, it
			// makes no more pool servers.
			stopDevMaster(a, *dir)
			if err := destroyClouds(a, clouds); err != nil {
				return err
			}
			if err := c.Destroy(); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "removed %d local nodes\n", len(c.Nodes))
			return os.RemoveAll(*dir)
		},
	}
}

func (a *app) devNodeInitCommand() *cobra.Command {
	var dir, netns, hostname string
	cmd := &cobra.Command{
		Use:    "node-init --netns NAME --dir DIR -- PROGRAM [ARGS...]",
		Short:  "Enter a local node's namespaces and directories and exec its sshd (run by moat dev up)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return local.NodeInit(netns, dir, hostname, args)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the node's directory")
	cmd.Flags().StringVar(&netns, "netns", "", "the node's network namespace")
	cmd.Flags().StringVar(&hostname, "hostname", "", "the node's host name")
	cmd.MarkFlagRequired("dir")
	return cmd
}

// localClouds are the state directories of the local pools' clouds: those
// the master names, and those under the dev master's directory (the
// default place), so that down removes their machines too even when the
// master is not answering.
func localClouds(ctx context.Context, mc *masterapi.Client, dir string) []string {
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		if d != "" && !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	if pools, err := mc.Pools(ctx); err == nil {
		for _, p := range pools {
			if p.Provider == "local" {
				add(p.LocalDir)
			}
		}
	}
	states, _ := filepath.Glob(filepath.Join(dir, "master", "pools", "*", "cloud.json"))
	for _, st := range states {
		add(filepath.Dir(st))
	}
	return dirs
}

// destroyClouds destroys the local clouds' machines, bridges and state.
func destroyClouds(a *app, dirs []string) error {
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "cloud.json")); err != nil {
			continue
		}
		c, err := local.OpenCloud(d, "")
		if err != nil {
			return err
		}
		if err := c.DestroyAll(); err != nil {
			return fmt.Errorf("remove the local pool cloud in %s: %w", d, err)
		}
		fmt.Fprintf(a.stderr, "removed the local pool cloud in %s\n", d)
	}
	return nil
}

// stopDevMaster stops the master dev up started, if it did.
func stopDevMaster(a *app, dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "master.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return
	}
	// The pid may have been reused since: only a moat master is stopped.
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !bytes.Contains(cmdline, []byte("\x00master\x00")) || syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	// Wait for it to go, so its state can be removed and a new one start.
	for start := time.Now(); running(pid) && time.Since(start) < 15*time.Second; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	fmt.Fprintln(a.stderr, "stopped the master dev up started")
}

// running says whether a process is alive: a zombie (whose parent, here
// init, has not reaped it yet) is not.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] != 'Z'
}

func (a *app) devPowerCommand(dir *string, verb, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NODE",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := local.Load(filepath.Join(*dir, "cluster"))
			if err != nil {
				return err
			}
			if verb == "kill" {
				return c.StopNode(args[0])
			}
			return c.StartNode(args[0])
		},
	}
}
