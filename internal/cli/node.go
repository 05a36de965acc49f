package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/acme"

	"github.com/moatcloud/moat/internal/node"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/privilege"
	"github.com/moatcloud/moat/internal/quantity"
)

func (a *app) nodeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Run and manage nodes"}
	cmd.AddCommand(a.nodeServeCommand(), a.nodeAddCommand(), a.nodeRmCommand(), a.nodeLsCommand(), a.nodeAuditCommand(), a.nodeDialCommand(), a.nodeFirstbootCommand(),
		a.nodeVerbCommand("cordon", "Place no new replicas on a node"),
		a.nodeVerbCommand("uncordon", "Place replicas on a node again"),
		a.nodeVerbCommand("drain", "Move a node's replicas off it, under each app's update rules, and cordon it"))
	return cmd
}

func (a *app) nodeServeCommand() *cobra.Command {
	var cfg node.Config
	gcGrace := node.DefaultGCGrace
	cfg.GCGrace = &gcGrace
	var logMax, maxLayer, configFile, allowPrivileges, memory string
	cmd := &cobra.Command{
		Use:         "serve --root DIR [--socket PATH]",
		Annotations: map[string]string{daemon: "yes"},
		Short:       "Run the node daemon (containers, images, logs) on a unix socket",
		Long: `Run the node daemon. It listens on a unix socket only (mode 0600, root)
and never on TCP, except on an edge node (edge=true, which only the
operator sets: moat node add --edge), where it serves the cluster's
ingress routes on --edge-http and --edge-https. Containers it starts
outlive it: a restarted daemon re-adopts them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfigFile(cmd.Flags(), configFile); err != nil {
				return usageError{err}
			}
			var err error
			if cfg.LogMaxSize, err = quantity.ParseBytes(logMax); err != nil {
				return usageError{err}
			}
			if cfg.MaxLayer, err = quantity.ParseBytes(maxLayer); err != nil {
				return usageError{err}
			}
			if memory != "" {
				if cfg.Memory, err = quantity.ParseBytes(memory); err != nil {
					return usageError{fmt.Errorf("memory: %w", err)}
				}
			}
			if cfg.AllowPrivileges, err = privilege.Parse(allowPrivileges); err != nil {
				return usageError{fmt.Errorf("allow-privileges: %w", err)}
			}
			d, err := node.New(cfg, slog.Default())
			if err != nil {
				return err
			}
			return d.Serve(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Root, "root", nodeapi.StateDir, "state directory: images, containers, logs")
	f.StringVar(&cfg.Socket, "socket", nodeapi.Socket, "API socket")
	f.StringVar(&cfg.Runc, "runc", "runc", "runc binary")
	f.StringVar(&cfg.RuncRoot, "runc-root", "", "runc state directory (default ROOT/runc)")
	f.StringVar(&cfg.CgroupParent, "cgroup-parent", "moat", "cgroup containers are placed under")
	f.StringVar(&logMax, "log-max-size", "10Mi", "size of one container log file before rotation")
	f.IntVar(&cfg.LogMaxFiles, "log-max-files", 3, "container log files kept, current included")
	f.StringVar(&maxLayer, "max-layer-size", "8Gi", "largest unpacked layer accepted")
	f.StringVar(&configFile, "config", nodeapi.ConfigFile, "settings file: one flag=value per line; flags given on the command line win")
	f.StringSliceVar(&cfg.AllowBind, "allow-bind", nil, "host directory containers may bind-mount from (repeatable; default ROOT/volumes)")
	f.IntVar(&cfg.CPUs, "cpus", 0, "CPU capacity, in cores, the scheduler may place on this node (default: the machine's CPUs)")
	f.StringVar(&memory, "memory", "", "memory capacity the scheduler may place on this node, e.g. 2Gi (default: the machine's memory)")
	f.StringVar(&allowPrivileges, "allow-privileges", "", "privileges any container on this node may ask for, declared by its image or not: cap:NAME, root, writable-root, new-privileges, seccomp-unconfined, host-network (comma-separated)")
	f.BoolVar(&cfg.RequireSigned, "require-signed", true, "run only images signed by a key in the allowed signers file")
	f.StringVar(&cfg.AllowedSigners, "allowed-signers", node.DefaultAllowedSigners, "who may sign images this node runs (OpenSSH allowed_signers format)")
	f.StringVar(&cfg.RevokedSigners, "revoked-signers", node.DefaultRevokedSigners, "public keys whose signatures no longer count, one per line")
	f.StringVar(&cfg.PeerKey, "peer-key", node.DefaultPeerKey, "key this node fetches image blobs from other nodes with")
	f.StringVar(&cfg.AuthorizedKeys, "authorized-keys", nodeapi.AuthorizedKeys, "root's authorized_keys, where link keys other nodes log in with are pinned (only lines marked moat-link: are changed)")
	f.StringVar(&cfg.SecretsKey, "secrets-key", nodeapi.SecretsKey, "the cluster's secrets key (age identities): opens the secrets of containers")
	f.IntVar(&cfg.GCThreshold, "gc-threshold", 85, "collect unused images when the disk is this full (percent; 0: never by itself)")
	f.DurationVar(&cfg.GCInterval, "gc-interval", node.DefaultGCInterval, "how often the disk is looked at for --gc-threshold")
	f.DurationVar(cfg.GCGrace, "gc-grace", gcGrace, "images pulled more recently than this are never collected")
	f.DurationVar(&cfg.MetricsInterval, "metrics-interval", node.DefaultMetricsInterval, "how often the node samples itself, its containers and its routes for the master's metrics (at least 1s)")
	f.BoolVar(&cfg.Edge, "edge", false, "make this node an edge: serve the cluster's ingress routes on --edge-http and --edge-https, its only listeners besides sshd (the operator's choice: moat node add --edge writes edge=true in node.conf)")
	f.StringVar(&cfg.EdgeHTTP, "edge-http", ":80", "address an edge serves plain HTTP on (ACME HTTP-01, redirects to https for hosts with TLS)")
	f.StringVar(&cfg.EdgeHTTPS, "edge-https", ":443", "address an edge serves HTTPS on")
	f.StringVar(&cfg.ACMEEmail, "acme-email", "", "address the ACME CA may send certificate expiry notices to")
	f.StringVar(&cfg.ACMEDirectory, "acme-directory", acme.LetsEncryptURL, "ACME directory URL certificates come from")
	f.StringVar(&cfg.ACMECAFile, "acme-ca-file", "", "PEM file of extra roots to trust for the ACME directory (a private CA, or pebble in tests)")
	return cmd
}
