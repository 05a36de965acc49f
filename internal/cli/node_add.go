package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/quantity"
	"github.com/moatcloud/moat/internal/sshkey"
)

// masterDir is where the master's state lives.
func masterDir() string { return envOr("MOAT_MASTER_DIR", inventory.DefaultDir) }

func (a *app) nodeAddCommand() *cobra.Command {
	var opts enroll.Options
	var labels, sshOpts []string
	var signersFile, secretsKeyFile string
	var allowUnsigned, noHarden bool
	var tenant string // and shared: whose replicas the node runs
	var shared, edge bool
	var pool string
	cmd := &cobra.Command{
		Use:   "add [flags] USER@HOST[:PORT]",
		Short: "Enrol a machine you can SSH into as a node",
		Long: `Enrol a machine you can already SSH into (as root, or a user with
passwordless sudo). moat uses your own ssh client, so ~/.ssh/config,
ssh-agent, known_hosts, -i and jump hosts work as they do for ssh.

It uploads this moat binary over SFTP to /usr/local/bin/moat (checksum
verified), pins the master's key to "moat gate" in root's authorized_keys,
starts the node daemon (a systemd unit, or detached without systemd),
records the machine's host key, registers the node with the master and
waits until the master reaches it through the gate. Running it again is
safe.

The node runs only images signed by a key in the allowed signers file you
give (OpenSSH allowed_signers format; see moat image sign), installed as
/etc/moat/allowed_signers through your own SSH access: the master's key
cannot change it, so a compromised master cannot run code of its own.
--allow-unsigned turns that off.

It hardens sshd with a drop-in, /etc/ssh/sshd_config.d/00-moat.conf:
modern key exchange, ciphers and MACs only, no password login, no agent
forwarding, a short LoginGraceTime. It checks the drop-in with sshd -t,
reloads sshd and logs in again on a new connection: if that fails, the
previous configuration comes back (and a switch on the node restores it
within a minute should your connection drop meanwhile).
--no-harden-sshd leaves sshd alone.

The node runs the replicas of one tenant (--tenant, by default the one your
requests act in), and with --shared every tenant's. A tenant at its nodes
quota is refused before anything is installed.

--edge makes the node an edge: it serves the cluster's ingress routes
(apps' ingress: host and path to a port) over HTTP and HTTPS on ports 80
and 443, its only listeners besides sshd, with certificates from files or
ACME. It writes edge=true in the node's /etc/moat/node.conf through your
own SSH access: only the operator makes a node an edge, never the master.
--edge=false removes that line; enrolling again without the flag leaves
it as it is. moat node audit reports 80 and 443 as the edge's, intended.
Every edge also gets the cluster's edge cache key (made on first use
beside your secrets key, or $MOAT_EDGE_KEY), replacing any other: the
edges share their ACME certificates and challenges through the master,
sealed with it, and the master never has it.`,
		Example: "  moat node add --allowed-signers ~/.config/moat/allowed_signers root@203.0.113.7\n  moat node add --allowed-signers signers --label zone=fsn1 -i ~/.ssh/ops --jump admin@bastion root@10.0.0.5",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := a.masterClient()
			key, err := c.Key(ctx)
			if err != nil {
				return fmt.Errorf("enrol %s: the master must run to take the node in (moat init; moat master): %w", args[0], err)
			}
			if err := setKeys(&opts, key); err != nil {
				return err
			}
			if err := nodeRoom(ctx, c, tenant); err != nil {
				return err
			}
			dest, port, err := splitDest(args[0])
			if err != nil {
				return usageError{err}
			}
			if port != 0 && opts.Access.Port != 0 && port != opts.Access.Port {
				return usageError{fmt.Errorf("%s names port %d, --port says %d", args[0], port, opts.Access.Port)}
			}
			opts.Access.Dest = dest
			if port != 0 {
				opts.Access.Port = port
			}
			if opts.Labels, err = parseKV(labels, "--label"); err != nil {
				return usageError{err}
			}
			if err := staticPool(ctx, c, pool, &opts.Labels); err != nil {
				return err
			}
			for _, o := range sshOpts {
				opts.ExtraSSH = append(opts.ExtraSSH, "-o", o)
			}
			opts.RequireSigned, opts.HardenSSHD = !allowUnsigned, !noHarden
			if cmd.Flags().Changed("edge") {
				opts.Edge = &edge
			}
			if edge {
				path := edgeKeyPath()
				key, made, err := loadOrMakeEdgeKey(path)
				if err != nil {
					return err
				}
				if made && !a.json {
					fmt.Fprintf(a.stderr, "made the cluster's edge cache key %s (every edge gets it; keep it as you keep the secrets key)\n", path)
				}
				opts.EdgeCacheKey = key
			}
			if signersFile != "" {
				if opts.AllowedSigners, err = os.ReadFile(signersFile); err != nil {
					return usageError{fmt.Errorf("--allowed-signers: %w", err)}
				}
			}
			if opts.SecretsKey, err = enrolSecretsKey(secretsKeyFile); err != nil {
				return err
			}
			if !a.json {
				opts.Log = func(step string) { fmt.Fprintln(a.stderr, "  "+step) }
				opts.Progress = func(total int64) io.Writer { return newProgress(a.stderr, total, "upload moat") }
			}
			node, err := enroll.Add(ctx, opts)
			if err != nil {
				return fmt.Errorf("enrol %s: %w", args[0], err)
			}
			reg := node.Registration()
			reg.Tenant, reg.Shared = tenant, shared
			if err := c.RegisterNode(ctx, reg); err != nil {
				return err
			}
			up, err := waitNodeUp(ctx, c, node.Name, 30*time.Second)
			if err != nil {
				return fmt.Errorf("enrol %s: %w", args[0], err)
			}
			return a.printEnrolled(up)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Name, "name", "", "node name (default: the machine's short hostname)")
	f.IntVarP(&opts.Access.Port, "port", "p", 0, "SSH port (default: ssh's)")
	f.StringVarP(&opts.Access.Identity, "identity", "i", "", "private key for your SSH login")
	f.StringVarP(&opts.Access.Jump, "jump", "J", "", "jump host, USER@HOST[:PORT]")
	f.StringVarP(&opts.Access.SSHConfig, "ssh-config", "F", "", "ssh config file (default: ~/.ssh/config)")
	f.StringArrayVarP(&sshOpts, "ssh-option", "o", nil, "extra ssh option, as for ssh -o (repeatable)")
	f.StringVar(&opts.Address, "address", "", "HOST:PORT the master connects to (default: what ssh resolves)")
	f.StringArrayVarP(&labels, "label", "l", nil, "node label K=V (repeatable)")
	f.StringVar(&pool, "pool", "static", "the static pool the node joins (moat pool add NAME --provider static)")
	f.StringVar(&opts.Binary, "binary", "", "moat binary to install, e.g. one built for arm64 (default: this one)")
	f.StringVar(&signersFile, "allowed-signers", os.Getenv("MOAT_ALLOWED_SIGNERS"), "who may sign images the node runs (OpenSSH allowed_signers file; default $MOAT_ALLOWED_SIGNERS)")
	f.BoolVar(&allowUnsigned, "allow-unsigned", false, "let the node run unsigned images")
	f.StringVar(&secretsKeyFile, "secrets-key", "", "the cluster's secrets key to install (default: yours, $MOAT_SECRETS_KEY or ~/.config/moat/secrets.key, if it exists)")
	f.BoolVar(&noHarden, "no-harden-sshd", false, "leave the node's sshd settings as they are")
	f.StringVar(&tenant, "tenant", "", "tenant whose replicas the node runs (default: the tenant your requests act in)")
	f.BoolVar(&shared, "shared", false, "the node runs every tenant's replicas as well")
	f.BoolVar(&edge, "edge", false, "make the node an edge, serving ingress on 80 and 443 (--edge=false: no longer; default: as its node.conf says)")
	return cmd
}

// waitNodeUp waits until the master reports the node up and described.
func waitNodeUp(ctx context.Context, c *masterapi.Client, name string, timeout time.Duration) (masterapi.Node, error) {
	deadline := time.Now().Add(timeout)
	for {
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return masterapi.Node{}, err
		}
		for _, n := range nodes {
			if n.Name == name && n.State == "up" && n.Info.CPUs > 0 {
				return n, nil
			}
			if n.Name == name && time.Now().After(deadline) {
				return n, fmt.Errorf("the master does not reach %s at %s through the gate: %s (if the node is reachable only through a jump host, pass --address HOST:PORT the master can reach)", name, n.Addr, orDash(n.Error))
			}
		}
		select {
		case <-ctx.Done():
			return masterapi.Node{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *app) printEnrolled(n masterapi.Node) error {
	if a.json {
		return printJSON(a.stdout, n)
	}
	i := n.Info
	return table(a.stdout, [][]string{
		{"node:", n.Name + " (" + n.Addr + ")"}, {"os:", i.OS}, {"kernel:", i.Kernel + " (" + i.Arch + ")"},
		{"runc:", i.Runc}, {"cgroups:", i.CgroupMode}, {"cpus:", strconv.Itoa(i.CPUs)},
		{"edge:", edgeString(i.Edge, i.EdgeHTTP, i.EdgeHTTPS)},
		{"memory:", quantity.FormatBytes(i.MemoryBytes)},
		{"disk:", quantity.FormatBytes(i.DiskFreeBytes) + " free of " + quantity.FormatBytes(i.DiskBytes)},
		{"host key:", fingerprint(n.HostKey)},
	})
}

// edgeString says whether a node is an edge and where it listens.
func edgeString(edge bool, http, https string) string {
	if !edge {
		return "no"
	}
	return "yes: http " + orDash(http) + ", https " + orDash(https)
}

func parseKV(items []string, flag string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want K=V", flag, it)
		}
		out[k] = v
	}
	return out, nil
}

// setKeys puts the master's and the peer key, as the master gives them,
// into enrolment options.
func setKeys(opts *enroll.Options, key masterapi.Key) error {
	var err error
	if opts.MasterKey, err = sshkey.ParsePublicKey(key.AuthorizedKey); err != nil {
		return err
	}
	if key.PeerAuthorizedKey != "" {
		if opts.PeerPublic, err = sshkey.ParsePublicKey(key.PeerAuthorizedKey); err != nil {
			return err
		}
		opts.PeerKey = []byte(key.PeerKey)
	}
	return nil
}

// splitDest takes the port off USER@HOST:PORT (see inventory.SplitDest).
func splitDest(arg string) (dest string, port int, err error) { return inventory.SplitDest(arg) }
